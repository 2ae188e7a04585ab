//! The kexec_file_load syscall (no libc wrapper exists).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

pub fn kexec_file_load(
    kernel: BorrowedFd<'_>,
    initrd: Option<BorrowedFd<'_>>,
    cmdline: &CStr,
) -> io::Result<()> {
    let (initrd_fd, flags) = match initrd {
        Some(fd) => (fd.as_raw_fd(), 0),
        None => (-1, libc::KEXEC_FILE_NO_INITRAMFS),
    };
    // The length includes the terminating NUL (the kernel checks for it).
    let len = cmdline.to_bytes_with_nul().len();
    // SAFETY: both descriptors are borrowed, hence open for the duration of
    // the call (initrd_fd is -1 only together with KEXEC_FILE_NO_INITRAMFS,
    // when the kernel ignores it); `cmdline` points to `len` readable bytes
    // ending in NUL and outlives the call; the kernel only reads from it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel.as_raw_fd() as libc::c_long,
            initrd_fd as libc::c_long,
            len as libc::c_ulong,
            cmdline.as_ptr(),
            flags as libc::c_ulong,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
