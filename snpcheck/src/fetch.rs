//! Getting a report from the guest firmware: configfs-tsm first, `/dev/sev-guest` second.
//! SEV-SNP exists only on AMD x86_64: on other architectures (the arm64 image) the
//! `/dev/sev-guest` path is compiled out and says so, and no ioctl is ever issued; configfs-tsm
//! is generic (other vendors' providers are refused by name).

#[cfg(target_arch = "x86_64")]
use crate::report::REPORT_LEN;
#[cfg(target_arch = "x86_64")]
use crate::sys;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const TSM_REPORT_DIR: &str = "/sys/kernel/config/tsm/report";
pub const SEV_GUEST_DEV: &str = "/dev/sev-guest";

/// What came back.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub report: Vec<u8>,
    /// The host's certificate table, if it offered one.
    pub certs: Option<Vec<u8>>,
    pub via: &'static str,
    /// Extra facts (provider, generation, ...).
    pub details: Vec<(String, String)>,
}

/// Why not.
#[derive(Debug, Clone)]
pub enum FetchError {
    /// The interface is absent or says this is not an SEV-SNP guest.
    Unavailable(String),
    /// The interface exists but the request failed.
    Io(String),
}

impl FetchError {
    pub fn message(&self) -> &str {
        match self {
            FetchError::Unavailable(s) | FetchError::Io(s) => s,
        }
    }
}

/// One attempt, for the log.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub interface: &'static str,
    pub result: Result<String, FetchError>,
}

/// Removes the configfs entry however we leave.
struct EntryGuard(PathBuf);
impl Drop for EntryGuard {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

fn read_trim(p: &Path) -> io::Result<String> {
    fs::read(p).map(|b| String::from_utf8_lossy(&b).trim().to_string())
}

fn io_msg(what: &str, e: &io::Error) -> String {
    format!("{what}: {e}")
}

/// Via configfs-tsm (Linux >= 6.7): mkdir an entry, write inblob (and privlevel), read outblob,
/// auxblob, provider and generation, rmdir.
pub fn via_configfs(user_data: &[u8; 64], vmpl: Option<u32>) -> Result<Fetched, FetchError> {
    via_configfs_at(Path::new(TSM_REPORT_DIR), user_data, vmpl)
}

pub fn via_configfs_at(
    base: &Path,
    user_data: &[u8; 64],
    vmpl: Option<u32>,
) -> Result<Fetched, FetchError> {
    if !base.is_dir() {
        let hint = if Path::new("/sys/kernel/config")
            .read_dir()
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
        {
            " (configfs not mounted? mount -t configfs none /sys/kernel/config)"
        } else {
            " (kernel without CONFIG_TSM_REPORTS, or older than 6.7)"
        };
        return Err(FetchError::Unavailable(format!(
            "{} not present{hint}",
            base.display()
        )));
    }
    let entry = base.join(format!("snpcheck-{}", std::process::id()));
    if let Err(e) = fs::create_dir(&entry) {
        return Err(match e.raw_os_error() {
            Some(libc::ENXIO) => FetchError::Unavailable(
                "no TSM provider: mkdir in configfs-tsm failed with ENXIO (not a confidential guest, or sev-guest driver not loaded)".into(),
            ),
            _ => FetchError::Io(io_msg(&format!("mkdir {}", entry.display()), &e)),
        });
    }
    let _guard = EntryGuard(entry.clone());
    request_in_entry(&entry, user_data, vmpl)
}

/// The request inside a freshly created entry (separate so it can be tested on a plain
/// directory that mimics the configfs attributes).
pub fn request_in_entry(
    entry: &Path,
    user_data: &[u8; 64],
    vmpl: Option<u32>,
) -> Result<Fetched, FetchError> {
    let provider = read_trim(&entry.join("provider"))
        .map_err(|e| FetchError::Io(io_msg("read provider", &e)))?;
    if provider != "sev_guest" {
        return Err(FetchError::Unavailable(format!(
            "configfs-tsm provider is \"{provider}\", not sev_guest"
        )));
    }
    let mut details = vec![("provider".to_string(), provider)];
    if let Some(v) = vmpl {
        let p = entry.join("privlevel");
        if p.exists() {
            fs::write(&p, v.to_string()).map_err(|e| {
                let floor = read_trim(&entry.join("privlevel_floor")).unwrap_or_default();
                FetchError::Io(format!(
                    "write privlevel {v}: {e} (privlevel_floor is {floor})"
                ))
            })?;
        }
    }
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(entry.join("inblob"))
            .map_err(|e| FetchError::Io(io_msg("open inblob", &e)))?;
        f.write_all(user_data)
            .map_err(|e| FetchError::Io(io_msg("write inblob", &e)))?;
    }
    let gen1 = read_trim(&entry.join("generation"))
        .map_err(|e| FetchError::Io(io_msg("read generation", &e)))?;
    let report =
        fs::read(entry.join("outblob")).map_err(|e| FetchError::Io(io_msg("read outblob", &e)))?;
    let certs = match fs::read(entry.join("auxblob")) {
        Ok(b) if !b.is_empty() && b.iter().any(|&x| x != 0) => Some(b),
        Ok(_) => None,
        Err(e) => {
            details.push(("auxblob".into(), format!("not available: {e}")));
            None
        }
    };
    let gen2 = read_trim(&entry.join("generation"))
        .map_err(|e| FetchError::Io(io_msg("read generation", &e)))?;
    if gen1 != gen2 {
        return Err(FetchError::Io(format!(
            "configfs-tsm generation moved from {gen1} to {gen2}: another writer raced this request"
        )));
    }
    details.push(("generation".into(), gen2));
    if let Ok(f) = read_trim(&entry.join("privlevel_floor")) {
        details.push(("privlevel_floor".into(), f));
    }
    Ok(Fetched {
        report,
        certs,
        via: "configfs-tsm",
        details,
    })
}

#[cfg(target_arch = "x86_64")]
fn fw_error_name(e: u32) -> &'static str {
    match e {
        0x00 => "SUCCESS",
        0x07 => "INVALID_ADDRESS",
        0x11 => "INVALID_CONFIG",
        0x16 => "INVALID_PARAM",
        0x27 => "INVALID_KEY",
        _ => "?",
    }
}

#[cfg(target_arch = "x86_64")]
fn ioctl_msg(what: &str, e: &sys::IoctlError) -> String {
    format!(
        "{what}: {} (firmware error {:#x} {}, VMM error {:#x})",
        e.err,
        e.fw_error,
        fw_error_name(e.fw_error),
        e.vmm_error
    )
}

/// Pull the report out of a MSG_REPORT_RSP.
#[cfg(target_arch = "x86_64")]
fn report_from_resp(resp: &[u8]) -> Result<Vec<u8>, FetchError> {
    let word = |o: usize| {
        resp.get(o..o + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(u32::from_le_bytes)
            .unwrap_or(u32::MAX)
    };
    let status = word(0);
    if status != 0 {
        return Err(FetchError::Io(format!(
            "firmware returned status {status:#x} {} (a VMPL below the guest's own is INVALID_PARAM)",
            fw_error_name(status)
        )));
    }
    let size = word(4) as usize;
    let r = 0x20usize
        .checked_add(size)
        .and_then(|end| resp.get(0x20..end))
        .ok_or_else(|| {
            FetchError::Io(format!(
                "firmware reported a {size}-byte report, larger than the response"
            ))
        })?;
    if size < REPORT_LEN {
        return Err(FetchError::Io(format!(
            "firmware returned a {size}-byte report"
        )));
    }
    Ok(r.to_vec())
}

/// Via `/dev/sev-guest`: SNP_GET_EXT_REPORT (report + host certificates), falling back to
/// SNP_GET_REPORT.
#[cfg(target_arch = "x86_64")]
pub fn via_sev_guest(user_data: &[u8; 64], vmpl: u32) -> Result<Fetched, FetchError> {
    let dev = match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(SEV_GUEST_DEV)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(FetchError::Unavailable(format!(
                "{SEV_GUEST_DEV} not present"
            )));
        }
        Err(e) => return Err(FetchError::Io(io_msg(&format!("open {SEV_GUEST_DEV}"), &e))),
    };
    let mut details = Vec::new();
    let mut certs = vec![0u8; 4 * 4096];
    let mut ext = sys::get_ext_report(&dev, user_data, vmpl, &mut certs);
    if let Err(e) = &ext
        && e.vmm_error == sys::VMM_ERR_INVALID_LEN
        && (e.certs_len as usize) > certs.len()
        && e.certs_len <= 1 << 20
    {
        let need = (e.certs_len as usize).div_ceil(4096) * 4096;
        certs = vec![0u8; need];
        ext = sys::get_ext_report(&dev, user_data, vmpl, &mut certs);
    }
    match ext {
        Ok(resp) => {
            let report = report_from_resp(&resp[..])?;
            let certs = certs.iter().any(|&b| b != 0).then_some(certs);
            Ok(Fetched {
                report,
                certs,
                via: "/dev/sev-guest SNP_GET_EXT_REPORT",
                details,
            })
        }
        Err(e) => {
            details.push(("SNP_GET_EXT_REPORT".into(), ioctl_msg("failed", &e)));
            let resp = sys::get_report(&dev, user_data, vmpl)
                .map_err(|e| FetchError::Io(ioctl_msg("SNP_GET_REPORT", &e)))?;
            let report = report_from_resp(&resp[..])?;
            Ok(Fetched {
                report,
                certs: None,
                via: "/dev/sev-guest SNP_GET_REPORT",
                details,
            })
        }
    }
}

/// `/dev/sev-guest` is the AMD SEV-SNP guest driver of x86_64 kernels: not on this
/// architecture, whatever the file system holds.
#[cfg(not(target_arch = "x86_64"))]
pub fn via_sev_guest(_user_data: &[u8; 64], _vmpl: u32) -> Result<Fetched, FetchError> {
    Err(FetchError::Unavailable(format!(
        "{SEV_GUEST_DEV}: SEV-SNP is an AMD x86_64 feature, this is {}",
        std::env::consts::ARCH
    )))
}

/// Try configfs-tsm, then /dev/sev-guest. Returns the first success (or the most telling
/// error) and a log of every attempt.
pub fn fetch(
    user_data: &[u8; 64],
    vmpl: Option<u32>,
) -> (Result<Fetched, FetchError>, Vec<Attempt>) {
    let mut log = Vec::new();
    match via_configfs(user_data, vmpl) {
        Ok(f) => {
            log.push(Attempt {
                interface: "configfs-tsm",
                result: Ok(format!("got a {}-byte report", f.report.len())),
            });
            return (Ok(f), log);
        }
        Err(e) => log.push(Attempt {
            interface: "configfs-tsm",
            result: Err(e),
        }),
    }
    let r = via_sev_guest(user_data, vmpl.unwrap_or(0));
    log.push(Attempt {
        interface: "/dev/sev-guest",
        result: match &r {
            Ok(f) => Ok(format!(
                "got a {}-byte report via {}",
                f.report.len(),
                f.via
            )),
            Err(e) => Err(e.clone()),
        },
    });
    let r = match r {
        Ok(f) => Ok(f),
        // An Io error on either interface says more than "absent".
        Err(FetchError::Unavailable(_)) => Err(log
            .iter()
            .find_map(|a| match &a.result {
                Err(FetchError::Io(s)) => Some(FetchError::Io(format!("{}: {s}", a.interface))),
                _ => None,
            })
            .unwrap_or_else(|| {
                FetchError::Unavailable(
                    log.iter()
                        .map(|a| {
                            format!(
                                "{}: {}",
                                a.interface,
                                a.result.as_ref().err().map_or("", FetchError::message)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })),
        Err(e) => Err(e),
    };
    (r, log)
}

/// The guest's own VMPL, as the kernel reports it (Linux >= 6.10: /sys/devices/system/cpu/sev/vmpl).
pub fn own_vmpl() -> Option<u32> {
    read_trim(Path::new("/sys/devices/system/cpu/sev/vmpl"))
        .ok()
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::REPORT_LEN;

    fn entry(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("snpcheck-tsm-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        for (f, c) in [
            ("provider", "sev_guest\n"),
            ("generation", "3\n"),
            ("privlevel", ""),
            ("privlevel_floor", "0\n"),
            ("inblob", ""),
        ] {
            fs::write(d.join(f), c).unwrap();
        }
        fs::write(d.join("outblob"), vec![7u8; REPORT_LEN]).unwrap();
        d
    }

    #[test]
    fn configfs_sequence() {
        let d = entry("ok");
        let f = request_in_entry(&d, &[9u8; 64], Some(2)).unwrap();
        assert_eq!(f.report, vec![7u8; REPORT_LEN]);
        assert!(f.certs.is_none());
        assert_eq!(fs::read(d.join("inblob")).unwrap(), vec![9u8; 64]);
        assert_eq!(fs::read_to_string(d.join("privlevel")).unwrap(), "2");
        fs::write(d.join("auxblob"), [1u8, 2, 3]).unwrap();
        let f = request_in_entry(&d, &[0u8; 64], None).unwrap();
        assert_eq!(f.certs, Some(vec![1, 2, 3]));
        fs::write(d.join("provider"), "tdx_guest\n").unwrap();
        assert!(matches!(
            request_in_entry(&d, &[0u8; 64], None),
            Err(FetchError::Unavailable(_))
        ));
        let _ = fs::remove_dir_all(&d);
        assert!(matches!(
            via_configfs_at(&d, &[0u8; 64], None),
            Err(FetchError::Unavailable(_))
        ));
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn response_parsing() {
        let mut r = vec![0u8; sys::RESP_LEN];
        r[4..8].copy_from_slice(&(REPORT_LEN as u32).to_le_bytes());
        r[0x20] = 2;
        assert_eq!(report_from_resp(&r).unwrap().len(), REPORT_LEN);
        r[0] = 0x16;
        assert!(report_from_resp(&r).is_err());
        r[0] = 0;
        r[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(report_from_resp(&r).is_err());
        r[4..8].copy_from_slice(&10u32.to_le_bytes());
        assert!(report_from_resp(&r).is_err());
        assert!(report_from_resp(&[]).is_err());
    }
}
