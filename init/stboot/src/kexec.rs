//! Load the verified kernel for kexec: kernel and initramfs go into memfds
//! (the kernel reads them by descriptor; nothing touches a file system), the
//! manifest's cmdline is passed as is. The reboot into it is the shutdown
//! path's `Action::Kexec` (reboot(LINUX_REBOOT_CMD_KEXEC)).
//!
//! KEXEC_SIG is not enabled in the NekOS kernel and there is no lockdown, so
//! the stage-1 kernel does not demand a kernel signature of its own: the OS
//! package signatures checked by `verify_package` are the gate. (With
//! KEXEC_SIG_FORCE or lockdown the call fails with EKEYREJECTED/EPERM, which
//! is reported as such.)

mod sys;

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;

use nix::sys::memfd::{MFdFlags, memfd_create};

fn memfd_with(name: &str, data: &[u8]) -> Result<File, String> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("memfd_create({name}): {e}"))?;
    let mut f = File::from(fd);
    f.write_all(data)
        .map_err(|e| format!("writing {name} to memfd ({} bytes): {e}", data.len()))?;
    Ok(f)
}

/// kexec_file_load the kernel, initramfs (may be empty) and cmdline.
pub fn load(kernel: &[u8], initramfs: &[u8], cmdline: &str) -> Result<(), String> {
    let cmdline = CString::new(cmdline).map_err(|_| "cmdline contains a NUL byte".to_string())?;
    let kernel_fd = memfd_with("kernel", kernel)?;
    let initrd = if initramfs.is_empty() {
        None
    } else {
        Some(memfd_with("initramfs", initramfs)?)
    };
    sys::kexec_file_load(kernel_fd.as_fd(), initrd.as_ref().map(|f| f.as_fd()), &cmdline)
        .map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::ENOEXEC) => "not a loadable kernel image (bzImage expected)",
                Some(libc::EKEYREJECTED) | Some(libc::EPERM) => {
                    "rejected: the running kernel requires a signed kernel (KEXEC_SIG/lockdown) or we lack CAP_SYS_BOOT"
                }
                Some(libc::ENOSYS) => "kexec_file_load not supported by this kernel (KEXEC_FILE)",
                Some(libc::EBUSY) => "a kexec image is already being loaded",
                Some(libc::ENOMEM) => "out of memory",
                _ => "failed",
            };
            format!("kexec_file_load: {why} ({e})")
        })
}
