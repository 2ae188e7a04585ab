//! Stage 1 of the network boot ("stboot"), its own static program: when the
//! initramfs carries a trust policy, init starts `/bin/nekos-stboot` instead of
//! the services, and this program runs the sequence:
//!
//! 1. read `/etc/trust_policy/*` and the host configuration (`config`);
//! 2. bring the NIC up, static or DHCP (`net`, `dhcp`);
//! 3. GET a descriptor from `ospkg_pointer` (each URL in turn, 8 tries 1 s
//!    apart), then the zip it names (`fetch`), over HTTPS trusting only
//!    `tls_roots.pem`;
//! 4. verify with nekos-ospkg (signature threshold, certificate chains and
//!    validity at CLOCK_REALTIME) — nothing unverified goes further;
//! 5. kexec_file_load the verified kernel + initramfs + manifest cmdline
//!    (`kexec`);
//! 6. measure into PCRs 12/13/14 (`measure`);
//! 7. exit 0: init's one shutdown path then ends in
//!    reboot(LINUX_REBOOT_CMD_KEXEC) into the loaded kernel.
//!
//! Exit codes (what init does): 0 the verified kernel is loaded (kexec);
//! 1 stage 1 gave up (reboot); 2 usage error (reboot). init keeps handling
//! signals and the power button meanwhile; PID 1 stays small and the init
//! binary of this image is the production one.
//!
//! Recovery: a failed attempt prints one `nekos: stboot: <step> …: <reason>`
//! line and is retried after 5 s, 10 s, 20 s, 30 s, 30 s … until the stboot
//! deadline (`--deadline SECS`, which init passes from
//! `nekos.stboot_deadline`, default 120 s) has passed; then init reboots. Configuration errors (the initramfs cannot change) and a failed
//! measurement (the PCRs are then in an unknown state; extending again would
//! make them unpredictable) reboot at once.

mod config;
mod kexec;
mod measure;
mod net;

// The network-facing readers live in the library (lib.rs) so the fuzzer runs the same code.
use nekos_stboot::{dhcp, fetch, url};

use nekos_ospkg as ospkg;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use config::Inputs;
use measure::Event;
use url::Url;

/// Fetch tries per descriptor URL and per package, and the pause between them
/// (stboot's values).
const FETCH_TRIES: u32 = 8;
const FETCH_PAUSE: Duration = Duration::from_secs(1);

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex (the `hex` crate, through the OS-package crate stage 1 already uses).
pub use nekos_ospkg::hex;

/// A console marker: `nekos: stboot: <msg>` (stdout is init's console).
fn say(msg: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "nekos: stboot: {msg}");
    let _ = out.flush();
}

/// What stage 1 ended in; the exit code tells init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The verified kernel is loaded: kexec into it.
    Kexec,
    /// Gave up: reboot.
    GaveUp,
}

/// Default of `--deadline` (init passes `nekos.stboot_deadline`).
const DEFAULT_DEADLINE_S: u64 = 120;

fn main() -> std::process::ExitCode {
    // Diagnostics beyond the console markers go to the kernel log, as init's do.
    let _ = kernlog::init();
    // kernlog passes everything; ureq and rustls log each read and TLS record at debug and
    // trace, which made one download ~700,000 rate-limited kmsg lines (hiding our own).
    log::set_max_level(
        if std::env::var("NEKOS_LOGLEVEL").is_ok_and(|l| l == "debug") {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Info
        },
    );
    let deadline = match parse_args(std::env::args().skip(1)) {
        Ok(d) => d,
        Err(e) => {
            say(&format!("usage: nekos-stboot [--deadline SECS]: {e}"));
            return std::process::ExitCode::from(2);
        }
    };
    match run(deadline) {
        Outcome::Kexec => std::process::ExitCode::SUCCESS,
        Outcome::GaveUp => std::process::ExitCode::from(1),
    }
}

/// `--deadline SECS` (whole seconds), nothing else.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Duration, String> {
    let mut deadline = Duration::from_secs(DEFAULT_DEADLINE_S);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--deadline" => {
                let v = args.next().ok_or("--deadline needs a value")?;
                let secs = v
                    .parse::<u64>()
                    .map_err(|_| format!("--deadline: expected whole seconds, got {v:?}"))?;
                deadline = Duration::from_secs(secs);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(deadline)
}

/// When to try again, as a pure state machine over elapsed time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    deadline: Duration,
    next_delay: Duration,
}

impl Recovery {
    pub const FIRST: Duration = Duration::from_secs(5);
    pub const CAP: Duration = Duration::from_secs(30);

    pub fn new(deadline: Duration) -> Self {
        Recovery {
            deadline,
            next_delay: Self::FIRST,
        }
    }

    /// After a failed attempt at `elapsed` since the start: the pause before
    /// the next one, or None when the deadline would pass first.
    pub fn after_failure(&mut self, elapsed: Duration) -> Option<Duration> {
        let delay = self.next_delay;
        if elapsed + delay >= self.deadline {
            return None;
        }
        self.next_delay = (delay * 2).min(Self::CAP);
        Some(delay)
    }
}

enum Failure {
    /// Worth another attempt (network, server, package content).
    Retry(String),
    /// Reboot now.
    Fatal(String),
}

/// The whole stage: what init's shutdown path should do.
fn run(deadline: Duration) -> Outcome {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    say(&format!(
        "clock {} (certificate validity is checked against it)",
        utc(now)
    ));
    let inputs = match config::load(Path::new("/")) {
        Ok(i) => i,
        Err(e) => return give_up(&format!("config: {e}")),
    };
    say(&format!(
        "trust policy: {} signature(s) required, fetch method {}; host configuration from {}",
        inputs.policy.ospkg_signature_threshold,
        match inputs.policy.ospkg_fetch_method {
            ospkg::FetchMethod::Network => "network",
            ospkg::FetchMethod::Initramfs => "initramfs",
        },
        inputs.host_source
    ));
    let tls = if inputs.net.is_some() {
        match fetch::tls_config(&inputs.tls_roots_pem) {
            Ok(t) => Some(t),
            Err(e) => return give_up(&format!("config: /{}: {e}", config::TLS_ROOTS)),
        }
    } else {
        None
    };
    let started = Instant::now();
    let mut recovery = Recovery::new(deadline);
    let mut network: Option<net::Up> = None;
    let mut attempt = 1u32;
    loop {
        match try_boot(&inputs, tls.as_ref(), &mut network) {
            Ok(label) => {
                say(&format!("kexec {label}"));
                return Outcome::Kexec;
            }
            Err(Failure::Fatal(line)) => return give_up(&line),
            Err(Failure::Retry(line)) => {
                say(&line);
                match recovery.after_failure(started.elapsed()) {
                    Some(pause) => {
                        attempt += 1;
                        say(&format!(
                            "retry in {} s (attempt {attempt})",
                            pause.as_secs()
                        ));
                        std::thread::sleep(pause);
                    }
                    None => {
                        return give_up(&format!(
                            "gave up after {attempt} attempts in {} s (deadline {} s): {line}",
                            started.elapsed().as_secs(),
                            deadline.as_secs()
                        ));
                    }
                }
            }
        }
    }
}

fn give_up(line: &str) -> Outcome {
    say(line);
    Outcome::GaveUp
}

/// One attempt; Ok(label) once the kernel is loaded and measured.
fn try_boot(
    inputs: &Inputs,
    tls: Option<&fetch::Tls>,
    network: &mut Option<net::Up>,
) -> Result<String, Failure> {
    let (descriptor_url, descriptor, zip_url, zip) = match (&inputs.net, tls) {
        (Some(settings), Some(tls)) => {
            if network.is_none() {
                let up =
                    net::bring_up(settings).map_err(|e| Failure::Retry(format!("network: {e}")))?;
                say(&format!(
                    "network up {} {}/{} gateway {} dns {}",
                    up.ifname,
                    up.addr,
                    up.prefix,
                    up.gateway
                        .map(|g| g.to_string())
                        .unwrap_or_else(|| "none".into()),
                    if up.dns.is_empty() {
                        "none".to_string()
                    } else {
                        up.dns
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    }
                ));
                *network = Some(up);
            }
            fetch_package(&inputs.pointers, tls)?
        }
        _ => {
            let d =
                std::fs::read(Path::new("/").join(config::INITRAMFS_DESCRIPTOR)).map_err(|e| {
                    Failure::Fatal(format!("read /{}: {e}", config::INITRAMFS_DESCRIPTOR))
                })?;
            let z = std::fs::read(Path::new("/").join(config::INITRAMFS_ZIP))
                .map_err(|e| Failure::Fatal(format!("read /{}: {e}", config::INITRAMFS_ZIP)))?;
            say(&format!(
                "package from the initramfs: /{} ({} bytes), /{} ({} bytes)",
                config::INITRAMFS_DESCRIPTOR,
                d.len(),
                config::INITRAMFS_ZIP,
                z.len()
            ));
            (
                format!("initramfs:/{}", config::INITRAMFS_DESCRIPTOR),
                d,
                format!("initramfs:/{}", config::INITRAMFS_ZIP),
                z,
            )
        }
    };

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let pkg = ospkg::verify_package(
        &descriptor,
        &zip,
        &inputs.policy,
        &inputs.signing_root_pem,
        now,
        ospkg::Limits::default(),
    )
    .map_err(|e| Failure::Retry(format!("verify: {e}")))?;
    // VerifiedPackage does not carry the count; the same pure check again
    // (it passed a moment ago) only to report it.
    let valid = ospkg::Descriptor::from_json(&descriptor)
        .ok()
        .and_then(|d| {
            ospkg::verify(
                &d,
                &zip,
                &inputs.signing_root_pem,
                inputs.policy.ospkg_signature_threshold,
                now,
            )
            .ok()
        })
        .map_or(inputs.policy.ospkg_signature_threshold, |v| {
            v.valid_signatures
        });
    if pkg.descriptor_sha256 != sha256(&descriptor) || pkg.zip_sha256 != sha256(&zip) {
        return Err(Failure::Retry(
            "verify: digests of the verified package do not match the fetched bytes".to_string(),
        ));
    }
    say(&format!(
        "verified {} signatures (threshold {}) zip sha256 {}",
        valid,
        inputs.policy.ospkg_signature_threshold,
        hex(&pkg.zip_sha256)
    ));
    let label = pkg.manifest.label.clone();
    say(&format!(
        "package {label}: kernel {} ({} bytes), initramfs {} ({} bytes), cmdline {:?}",
        pkg.manifest.kernel,
        pkg.kernel.len(),
        pkg.manifest.initramfs,
        pkg.initramfs.len(),
        pkg.cmdline
    ));

    // Hash now and let the zip go before the kernel is copied into memfds:
    // lower peak memory (zip + unpacked files + memfd copies).
    let events = events(inputs, &zip_url, &zip, &descriptor_url, &descriptor);
    drop(zip);
    drop(descriptor);
    kexec::load(&pkg.kernel, &pkg.initramfs, &pkg.cmdline)
        .map_err(|e| Failure::Retry(format!("kexec load {label}: {e}")))?;
    drop(pkg);
    say(&format!("loaded {label} for kexec"));

    for ev in &events {
        say(&ev.line());
    }
    match measure::find_device() {
        None => say("no TPM, not measuring"),
        Some(dev) => {
            measure::extend_all(&dev, &events)
                .map_err(|e| Failure::Fatal(format!("measure: {}: {e}", dev.display())))?;
            say(&format!(
                "measured PCR 12/13/14 ({} events, {})",
                events.len(),
                dev.display()
            ));
        }
    }
    Ok(label)
}

/// The measured events, in extend order (see measure.rs for the table).
fn events(
    inputs: &Inputs,
    zip_url: &str,
    zip: &[u8],
    descriptor_url: &str,
    descriptor: &[u8],
) -> Vec<Event> {
    let mut ev = vec![
        Event::of(12, zip, format!("ospkg zip {zip_url}")),
        Event::of(12, descriptor, format!("ospkg descriptor {descriptor_url}")),
        Event::of(13, &inputs.policy_json, "trust policy"),
    ];
    for (i, der) in inputs.signing_root_ders.iter().enumerate() {
        ev.push(Event::of(13, der, format!("signing root {i} (DER)")));
    }
    ev.push(Event::of(13, &inputs.tls_roots_pem, "tls roots"));
    ev.push(Event::of(14, &inputs.host_json, "host configuration"));
    ev
}

/// Descriptor (first URL that works) and then its zip.
fn fetch_package(
    pointers: &[Url],
    tls: &fetch::Tls,
) -> Result<(String, Vec<u8>, String, Vec<u8>), Failure> {
    let mut last = String::from("no descriptor URL");
    for url in pointers {
        let got = with_retries(|| fetch::get(url, tls, &fetch::Limits::DESCRIPTOR));
        let (final_url, descriptor) = match got {
            Ok(v) => v,
            Err(e) => {
                last = format!("fetch descriptor {url}: {e}");
                if pointers.len() > 1 {
                    say(&last);
                }
                continue;
            }
        };
        say(&format!(
            "fetched descriptor {final_url} ({} bytes, sha256 {})",
            descriptor.len(),
            hex(&sha256(&descriptor))
        ));
        let d = ospkg::Descriptor::from_json(&descriptor)
            .map_err(|e| Failure::Retry(format!("descriptor {final_url}: {e}")))?;
        let zip_url = final_url
            .join(&d.os_pkg_url)
            .map_err(|e| Failure::Retry(format!("descriptor {final_url}: os_pkg_url: {e}")))?;
        let (zip_final, zip) = with_retries(|| fetch::get(&zip_url, tls, &fetch::Limits::PACKAGE))
            .map_err(|e| Failure::Retry(format!("fetch ospkg {zip_url}: {e}")))?;
        say(&format!(
            "fetched ospkg {zip_final} ({} bytes, sha256 {})",
            zip.len(),
            hex(&sha256(&zip))
        ));
        return Ok((
            final_url.to_string(),
            descriptor,
            zip_final.to_string(),
            zip,
        ));
    }
    Err(Failure::Retry(last))
}

fn with_retries<T>(mut op: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let start = Instant::now();
    fetch::retry(
        FETCH_TRIES,
        FETCH_PAUSE,
        Duration::from_secs(60),
        &mut || start.elapsed(),
        &mut std::thread::sleep,
        &mut op,
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (proleptic Gregorian).
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_the_one_argument() {
        let args = |v: &[&str]| parse_args(v.iter().map(|s| s.to_string()));
        assert_eq!(args(&[]).unwrap(), Duration::from_secs(DEFAULT_DEADLINE_S));
        assert_eq!(
            args(&["--deadline", "30"]).unwrap(),
            Duration::from_secs(30)
        );
        assert!(args(&["--deadline"]).unwrap_err().contains("needs a value"));
        assert!(
            args(&["--deadline", "soon"])
                .unwrap_err()
                .contains("\"soon\"")
        );
        assert!(args(&["--verbose"]).unwrap_err().contains("--verbose"));
    }

    #[test]
    fn recovery_backs_off_until_the_deadline() {
        let mut r = Recovery::new(Duration::from_secs(120));
        let mut t = Duration::from_secs(9); // the first attempt took 9 s
        let mut pauses = Vec::new();
        while let Some(p) = r.after_failure(t) {
            pauses.push(p.as_secs());
            t += p + Duration::from_secs(9);
        }
        assert_eq!(pauses, vec![5, 10, 20, 30]);
        // A deadline shorter than the first pause: give up at once.
        assert_eq!(
            Recovery::new(Duration::from_secs(3)).after_failure(Duration::ZERO),
            None
        );
        // Deadline 0 (nekos.stboot_deadline=0): one attempt only.
        assert_eq!(
            Recovery::new(Duration::ZERO).after_failure(Duration::ZERO),
            None
        );
    }

    #[test]
    fn measured_events_order_and_descriptions() {
        let inputs = Inputs {
            policy_json: b"{policy}".to_vec(),
            policy: ospkg::TrustPolicy::from_json(
                br#"{"ospkg_signature_threshold":2,"ospkg_fetch_method":"network"}"#,
            )
            .unwrap(),
            signing_root_pem: Vec::new(),
            signing_root_ders: vec![b"der0".to_vec(), b"der1".to_vec()],
            tls_roots_pem: b"tls".to_vec(),
            host_json: b"host".to_vec(),
            host_source: String::new(),
            net: None,
            pointers: Vec::new(),
        };
        let ev = events(
            &inputs,
            "https://h/p.zip",
            b"zip",
            "https://h/p.json",
            b"desc",
        );
        let got: Vec<(u32, [u8; 32], &str)> = ev
            .iter()
            .map(|e| (e.pcr, e.digest, e.description.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (12, sha256(b"zip"), "ospkg zip https://h/p.zip"),
                (12, sha256(b"desc"), "ospkg descriptor https://h/p.json"),
                (13, sha256(b"{policy}"), "trust policy"),
                (13, sha256(b"der0"), "signing root 0 (DER)"),
                (13, sha256(b"der1"), "signing root 1 (DER)"),
                (13, sha256(b"tls"), "tls roots"),
                (14, sha256(b"host"), "host configuration"),
            ]
        );
        let pcrs = measure::replay(&ev);
        assert_eq!(pcrs.keys().copied().collect::<Vec<_>>(), vec![12, 13, 14]);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_708_572), "2026-11-26T15:56:12Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn digests() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
