//! The only `unsafe` code in snpcheck: the `/dev/sev-guest` ioctls (linux/sev-guest.h).
//! (The SEV_STATUS MSR is read with `pread` through std's safe `FileExt::read_at`.)

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `_IOWR('S', 0x0, struct snp_guest_request_ioctl)`
const SNP_GET_REPORT: u32 = 0xC020_5300;
/// `_IOWR('S', 0x2, struct snp_guest_request_ioctl)`
const SNP_GET_EXT_REPORT: u32 = 0xC020_5302;

/// Size of `struct snp_report_resp`.
pub const RESP_LEN: usize = 4000;

/// `struct snp_guest_request_ioctl`
#[repr(C)]
struct GuestRequest {
    msg_version: u8,
    req_data: u64,
    resp_data: u64,
    /// `exitinfo2`: firmware error in the low 32 bits, VMM error in the high 32 bits.
    exitinfo2: u64,
}

/// `struct snp_report_req`
#[repr(C)]
#[derive(Clone, Copy)]
struct ReportReq {
    user_data: [u8; 64],
    vmpl: u32,
    rsvd: [u8; 28],
}

/// `struct snp_ext_report_req`
#[repr(C)]
struct ExtReportReq {
    data: ReportReq,
    certs_address: u64,
    certs_len: u32,
}

// The layouts must match the kernel's uapi exactly: the kernel copies these sizes.
const _: () = assert!(size_of::<GuestRequest>() == 32);
const _: () = assert!(size_of::<ReportReq>() == 96);
const _: () = assert!(size_of::<ExtReportReq>() == 112);

/// A failed request.
#[derive(Debug)]
pub struct IoctlError {
    pub err: io::Error,
    pub fw_error: u32,
    pub vmm_error: u32,
    /// For SNP_GET_EXT_REPORT: the certificate buffer size the host needs.
    pub certs_len: u32,
}

/// VMM error: the certificate buffer is too small (`SNP_GUEST_VMM_ERR_INVALID_LEN`).
pub const VMM_ERR_INVALID_LEN: u32 = 1;

fn request(
    dev: &File,
    nr: u32,
    req: *mut u8,
    resp: &mut [u8; RESP_LEN],
) -> Result<(), (io::Error, u32, u32)> {
    let mut greq = GuestRequest {
        msg_version: 1,
        req_data: req as u64,
        resp_data: resp.as_mut_ptr() as u64,
        exitinfo2: 0,
    };
    // SAFETY:
    // - `dev` is an open file, so the fd is valid for the duration of the call;
    // - `greq` is a live, correctly laid out `snp_guest_request_ioctl` (size asserted above)
    //   that the kernel reads and writes back (exitinfo2) only during the call;
    // - `req_data` points to a live request struct of the exact size the kernel copies for
    //   `nr` (callers pass a `ReportReq` for SNP_GET_REPORT, an `ExtReportReq` for
    //   SNP_GET_EXT_REPORT), borrowed mutably by the caller for the whole call;
    // - `resp_data` points to `resp`, a buffer of exactly `sizeof(struct snp_report_resp)`
    //   (4000) bytes, exclusively borrowed for the whole call.
    let rc = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            nr as libc::Ioctl,
            &mut greq as *mut GuestRequest,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return Err((err, greq.exitinfo2 as u32, (greq.exitinfo2 >> 32) as u32));
    }
    Ok(())
}

/// SNP_GET_REPORT: the raw `MSG_REPORT_RSP` (status, size, report at 0x20).
pub fn get_report(
    dev: &File,
    user_data: &[u8; 64],
    vmpl: u32,
) -> Result<Box<[u8; RESP_LEN]>, IoctlError> {
    let mut req = ReportReq {
        user_data: *user_data,
        vmpl,
        rsvd: [0; 28],
    };
    let mut resp = Box::new([0u8; RESP_LEN]);
    request(
        dev,
        SNP_GET_REPORT,
        (&mut req as *mut ReportReq).cast(),
        &mut resp,
    )
    .map_err(|(err, fw_error, vmm_error)| IoctlError {
        err,
        fw_error,
        vmm_error,
        certs_len: 0,
    })?;
    Ok(resp)
}

/// SNP_GET_EXT_REPORT: like [`get_report`] plus the host's certificate table written into
/// `certs` (whose length must be a multiple of the 4 KiB page size).
pub fn get_ext_report(
    dev: &File,
    user_data: &[u8; 64],
    vmpl: u32,
    certs: &mut [u8],
) -> Result<Box<[u8; RESP_LEN]>, IoctlError> {
    let certs_len = u32::try_from(certs.len()).map_err(|_| IoctlError {
        err: io::Error::from(io::ErrorKind::InvalidInput),
        fw_error: 0,
        vmm_error: 0,
        certs_len: 0,
    })?;
    let mut req = ExtReportReq {
        data: ReportReq {
            user_data: *user_data,
            vmpl,
            rsvd: [0; 28],
        },
        // The kernel writes at most `certs_len` bytes here, and `certs_len` is `certs.len()`;
        // `certs` stays exclusively borrowed until this function returns.
        certs_address: certs.as_mut_ptr() as u64,
        certs_len,
    };
    let mut resp = Box::new([0u8; RESP_LEN]);
    match request(
        dev,
        SNP_GET_EXT_REPORT,
        (&mut req as *mut ExtReportReq).cast(),
        &mut resp,
    ) {
        Ok(()) => Ok(resp),
        Err((err, fw_error, vmm_error)) => Err(IoctlError {
            err,
            fw_error,
            vmm_error,
            certs_len: req.certs_len,
        }),
    }
}
