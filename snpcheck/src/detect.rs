//! Evidence for `snpcheck status` other than a report: SEV_STATUS MSR and kernel evidence.

use crate::json::Json;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// What a piece of evidence says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Says SEV-SNP is active.
    Yes,
    /// Says SEV-SNP is not active.
    No,
    /// Could not tell.
    Unknown,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Yes => "yes",
            Verdict::No => "no",
            Verdict::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Evidence {
    pub source: String,
    /// "report", "msr", "kernel" or "hint" (strongest first).
    pub strength: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

impl Evidence {
    pub fn new(
        source: &str,
        strength: &'static str,
        verdict: Verdict,
        detail: impl Into<String>,
    ) -> Self {
        Evidence {
            source: source.to_string(),
            strength,
            verdict,
            detail: detail.into(),
        }
    }

    pub fn to_json(&self) -> Json {
        Json::obj()
            .with("source", self.source.as_str())
            .with("strength", self.strength)
            .with("says_snp", self.verdict.name())
            .with("detail", self.detail.as_str())
    }
}

pub const MSR_SEV_STATUS: u64 = 0xC001_0131;

/// Names of the SEV_STATUS bits.
pub fn describe_sev_status(v: u64) -> String {
    let names = [
        (0, "SEV"),
        (1, "SEV-ES"),
        (2, "SEV-SNP"),
        (3, "vTOM"),
        (4, "ReflectVC"),
        (5, "RestrictedInjection"),
        (6, "AlternateInjection"),
        (7, "DebugSwap"),
        (8, "PreventHostIBS"),
        (9, "BTBIsolation"),
        (10, "VmplSSS"),
        (11, "SecureTSC"),
        (12, "VmgexitParameter"),
        (14, "IbsVirtualization"),
        (16, "VmsaRegProt"),
        (17, "SmtProtection"),
    ];
    let on: Vec<&str> = names
        .iter()
        .filter(|(b, _)| v & (1u64 << b) != 0)
        .map(|(_, n)| *n)
        .collect();
    if on.is_empty() {
        format!("{v:#x} (no SEV features)")
    } else {
        format!("{v:#x} ({})", on.join(" "))
    }
}

/// SEV_STATUS via /dev/cpu/0/msr (pread at the MSR number). An x86 MSR: elsewhere (arm64)
/// it is not read at all, and says no: SEV-SNP is an AMD x86_64 feature.
pub fn msr() -> Evidence {
    let src = "SEV_STATUS MSR 0xC0010131 (/dev/cpu/0/msr)";
    if cfg!(not(target_arch = "x86_64")) {
        return Evidence::new(
            src,
            "msr",
            Verdict::No,
            format!(
                "not read: an AMD x86_64 register, this is {}",
                std::env::consts::ARCH
            ),
        );
    }
    let f = match fs::File::open("/dev/cpu/0/msr") {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Evidence::new(
                src,
                "msr",
                Verdict::Unknown,
                "not present (kernel without CONFIG_X86_MSR)",
            );
        }
        Err(e) => return Evidence::new(src, "msr", Verdict::Unknown, format!("open: {e}")),
    };
    let mut b = [0u8; 8];
    match f.read_exact_at(&mut b, MSR_SEV_STATUS) {
        Ok(()) => {
            let v = u64::from_le_bytes(b);
            let verdict = if v & 0b100 != 0 {
                Verdict::Yes
            } else {
                Verdict::No
            };
            let note = if v == 0 {
                "; note: reads 0 under TCG and on non-SEV guests"
            } else {
                ""
            };
            Evidence::new(
                src,
                "msr",
                verdict,
                format!("{}{note}", describe_sev_status(v)),
            )
        }
        Err(e) => Evidence::new(
            src,
            "msr",
            Verdict::Unknown,
            format!("rdmsr failed: {e} (not an AMD CPU, or the MSR is not readable)"),
        ),
    }
}

/// /sys/devices/system/cpu/sev/vmpl (only registered in SEV-SNP guests).
pub fn sysfs_vmpl() -> Evidence {
    let p = "/sys/devices/system/cpu/sev/vmpl";
    match fs::read_to_string(p) {
        Ok(s) => Evidence::new(
            p,
            "kernel",
            Verdict::Yes,
            format!("guest runs at VMPL {}", s.trim()),
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = std::path::Path::new("/sys/devices/system/cpu/sev").is_dir();
            Evidence::new(
                p,
                "kernel",
                if dir { Verdict::Yes } else { Verdict::Unknown },
                if dir {
                    "sev directory present without vmpl"
                } else {
                    "not present (not SNP, or kernel < 6.10)"
                },
            )
        }
        Err(e) => Evidence::new(p, "kernel", Verdict::Unknown, e.to_string()),
    }
}

/// /dev/sev-guest exists only when the sev-guest driver bound to an SNP guest.
pub fn dev_sev_guest() -> Evidence {
    let p = crate::fetch::SEV_GUEST_DEV;
    match fs::metadata(p) {
        Ok(_) => Evidence::new(
            p,
            "kernel",
            Verdict::Yes,
            "present (sev-guest driver bound)",
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Evidence::new(p, "kernel", Verdict::No, "not present")
        }
        Err(e) => Evidence::new(p, "kernel", Verdict::Unknown, e.to_string()),
    }
}

/// Classify one kernel log line.
pub fn classify_mem_encrypt_line(line: &str) -> Option<Verdict> {
    let (_, feats) = line.split_once("Memory Encryption Features active:")?;
    if feats.contains("SEV-SNP") {
        Some(Verdict::Yes)
    } else {
        Some(Verdict::No)
    }
}

/// The kernel log line "Memory Encryption Features active: AMD SEV SEV-ES SEV-SNP"
/// (read from /dev/kmsg without blocking).
pub fn dmesg() -> Evidence {
    let src = "kernel log (/dev/kmsg)";
    let mut f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    {
        Ok(f) => f,
        Err(e) => return Evidence::new(src, "kernel", Verdict::Unknown, format!("open: {e}")),
    };
    let mut buf = vec![0u8; 8192];
    let mut found: Option<(Verdict, String)> = None;
    for _ in 0..200_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(buf.get(..n).unwrap_or(&[])).into_owned();
                let msg = rec.split_once(';').map_or(rec.as_str(), |(_, m)| m);
                let msg = msg.lines().next().unwrap_or("").trim();
                if let Some(v) = classify_mem_encrypt_line(msg) {
                    found = Some((v, msg.to_string()));
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    match found {
        Some((v, line)) => Evidence::new(src, "kernel", v, format!("\"{line}\"")),
        None => Evidence::new(
            src,
            "kernel",
            Verdict::Unknown,
            "no \"Memory Encryption Features active\" line (not encrypted, or the log wrapped)",
        ),
    }
}

/// `sev_snp` in /proc/cpuinfo flags: a hint only (on a host it means capability).
pub fn cpuinfo() -> Evidence {
    let src = "/proc/cpuinfo flags";
    match fs::read_to_string("/proc/cpuinfo") {
        Ok(s) => {
            let flags = s
                .lines()
                .find(|l| l.starts_with("flags"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, f)| f.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default();
            let has = |f: &str| flags.iter().any(|x| x == f);
            let sev: Vec<&str> = ["sev", "sev_es", "sev_snp"]
                .into_iter()
                .filter(|f| has(f))
                .collect();
            if has("sev_snp") {
                Evidence::new(
                    src,
                    "hint",
                    Verdict::Yes,
                    format!("flags: {}", sev.join(" ")),
                )
            } else {
                Evidence::new(
                    src,
                    "hint",
                    Verdict::No,
                    if sev.is_empty() {
                        "no sev flags".to_string()
                    } else {
                        format!("flags: {}", sev.join(" "))
                    },
                )
            }
        }
        Err(e) => Evidence::new(src, "hint", Verdict::Unknown, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn lines() {
        assert_eq!(
            classify_mem_encrypt_line("Memory Encryption Features active: AMD SEV SEV-ES SEV-SNP"),
            Some(Verdict::Yes)
        );
        assert_eq!(
            classify_mem_encrypt_line("Memory Encryption Features active: AMD SEV"),
            Some(Verdict::No)
        );
        assert_eq!(classify_mem_encrypt_line("hello"), None);
        assert!(describe_sev_status(7).contains("SEV-SNP"));
    }
}
