//! `measurements.json`'s blank-store PCR prediction judged by a real boot: the
//! `fw,kernel,initramfs,uki` deployment (Debian OVMF_CODE_4M.fd, a copy of the blank
//! OVMF_VARS_4M.fd) with an swtpm TPM 2.0 on tpm-tis; PCR 4, 7 and 11 read at the prompt
//! from sysfs must equal the prediction. Needs the built artifacts (`NEKOS_MANIFEST`, as
//! `cargo nekos test` sets it), qemu-system-x86_64 and swtpm.

use nekos_packaging::deployments;
use nekos_packaging::measurements;
use nekos_packaging::qemu::{self, BootOptions, Frontend};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Kills (and reaps) a child on drop.
pub(crate) struct Reaped(Child);
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Serial = Arc<(Mutex<(String, bool)>, Condvar)>;

fn read_into(mut r: impl Read + Send + 'static, serial: Serial, mark_stderr: bool) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = r.read(&mut buf).unwrap_or(0);
            let (lock, cvar) = &*serial;
            let mut s = lock.lock().unwrap();
            if n == 0 {
                if !mark_stderr {
                    s.1 = true;
                }
                cvar.notify_all();
                return;
            }
            let chunk = String::from_utf8_lossy(&buf[..n]).replace('\r', "");
            if mark_stderr {
                s.0.push_str(&format!("\n[qemu stderr] {chunk}\n"));
            } else {
                s.0.push_str(&chunk);
            }
            cvar.notify_all();
        }
    });
}

/// Waits for `marker` after byte `from`; returns the offset just past it.
fn wait_from(serial: &Serial, from: usize, marker: &str, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    let (lock, cvar) = &**serial;
    let mut s = lock.lock().unwrap();
    loop {
        if let Some(p) = s.0.get(from..).and_then(|t| t.find(marker)) {
            return from + p + marker.len();
        }
        let now = Instant::now();
        if s.1 || now >= deadline {
            panic!(
                "{} waiting for {marker:?}; serial tail:\n{}",
                if s.1 { "QEMU exited" } else { "timed out" },
                nekos_packaging::util::tail_lines(&s.0, 40)
            );
        }
        s = cvar.wait_timeout(s, deadline - now).unwrap().0;
    }
}

fn wait_for_socket(path: &Path, swtpm: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        if let Some(st) = swtpm.try_wait().unwrap() {
            panic!("swtpm exited early: {st}");
        }
        assert!(
            Instant::now() < deadline,
            "swtpm did not create {}",
            path.display()
        );
        // swtpm signals readiness only by creating the socket; poll for it briefly.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// QEMU arguments for an swtpm listening on `ctrl`.
fn tpm_args(ctrl: &Path) -> Vec<String> {
    vec![
        "-chardev".into(),
        format!("socket,id=chrtpm,path={}", ctrl.display()),
        "-tpmdev".into(),
        "emulator,id=tpm0,chardev=chrtpm".into(),
        "-device".into(),
        "tpm-tis,tpmdev=tpm0".into(),
    ]
}

/// Starts swtpm (TPM 2.0) with its state in `dir`; returns it and its control socket.
pub(crate) fn start_swtpm(dir: &Path) -> (Reaped, std::path::PathBuf) {
    std::fs::create_dir_all(dir.join("tpm")).unwrap();
    let ctrl = dir.join("swtpm.sock");
    let mut swtpm = Command::new("swtpm")
        .args(["socket", "--tpm2", "--terminate"])
        .arg("--tpmstate")
        .arg(format!("dir={}", dir.join("tpm").display()))
        .arg("--ctrl")
        .arg(format!("type=unixio,path={}", ctrl.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("swtpm is missing (Debian packages swtpm swtpm-tools)");
    wait_for_socket(&ctrl, &mut swtpm);
    (Reaped(swtpm), ctrl)
}

/// Runs `cmd` (a QEMU whose serial line is stdio), waits for the prompt and reads PCR 4,
/// 7 and 11 (lowercase hex) from sysfs.
/// The one SHA-256 value in what `cat /sys/class/tpm/tpm0/pcr-sha256/<n>` printed.
fn single_pcr_value(out: &str, n: u32) -> String {
    let got: Vec<String> = out
        .split_whitespace()
        .filter(|t| t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|t| t.to_ascii_lowercase())
        .collect();
    assert_eq!(got.len(), 1, "PCR {n}: no single value in {out:?}");
    got[0].clone()
}

fn read_pcrs(mut cmd: Command) -> std::collections::BTreeMap<u32, String> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("qemu-system-x86_64");
    let serial: Serial = Arc::new((Mutex::new((String::new(), false)), Condvar::new()));
    read_into(child.stdout.take().unwrap(), serial.clone(), false);
    read_into(child.stderr.take().unwrap(), serial.clone(), true);
    let mut stdin = child.stdin.take().unwrap();
    let _qemu = Reaped(child);
    wait_from(&serial, 0, "nekos: boot ok", crate::common::BOOT);
    let mut at = wait_from(&serial, 0, "nekos# ", crate::common::BOOT);
    let mut out_map = std::collections::BTreeMap::new();
    for n in [4, 7, 11] {
        let from = at;
        writeln!(stdin, "cat /sys/class/tpm/tpm0/pcr-sha256/{n}").unwrap();
        stdin.flush().unwrap();
        // Past the echoed command line, then up to the next prompt.
        let start = wait_from(
            &serial,
            from,
            &format!("pcr-sha256/{n}"),
            crate::common::STEP,
        );
        at = wait_from(&serial, start, "nekos# ", crate::common::STEP);
        let out = serial.0.lock().unwrap().0[start..at].to_string();
        out_map.insert(n, single_pcr_value(&out, n));
    }
    out_map
}

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nekos-meas-qemu-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies a manifest file into `dir`, checking it is still the file the prediction used.
fn private_copy(from: &Path, sha256: &str, to: &Path) {
    std::fs::copy(from, to).unwrap();
    assert_eq!(
        nekos_packaging::util::sha256_file(to).unwrap(),
        sha256,
        "{} changed after the prediction (a concurrent `cargo nekos build`?)",
        from.display()
    );
}

fn check(got: &std::collections::BTreeMap<u32, String>, want: &serde_json::Value, pcr4_key: &str) {
    for n in [4, 7, 11] {
        let key = if n == 4 {
            pcr4_key.to_string()
        } else {
            format!("pcr{n}")
        };
        let w = want[&key].as_str().unwrap();
        assert_eq!(got[&n], w, "PCR {n}: measured vs predicted {key}\n{want:#}");
    }
}

/// The `fw,kernel,initramfs,uki` deployment (QEMU `-kernel`, Debian OVMF_CODE_4M.fd, a
/// copy of the blank OVMF_VARS_4M.fd): `pcr4_qemu_kernel`, `pcr7`, `pcr11` of `blank`.
#[test]
fn blank_store_qemu_kernel_pcrs_match_swtpm() {
    let mut manifest = crate::common::manifest();
    let predicted =
        measurements::compute(&manifest, &nekos_packaging::keys::default_keys_dir()).unwrap();
    let dir = scratch("kernel");
    let (_swtpm, ctrl) = start_swtpm(&dir);
    // Boot a private copy of the UKI the prediction was made from (another build may
    // replace target/nekos/ meanwhile).
    let uki = manifest.uki.get_mut("production").unwrap();
    let copy = dir.join("nekos.efi");
    private_copy(&uki.unsigned.path, &uki.unsigned.sha256, &copy);
    uki.unsigned.path = copy;

    let dep = deployments::find("debian-fw,kernel,initramfs,uki").unwrap();
    let opts = BootOptions::default();
    let mut cmd = qemu::command(dep, &manifest, &opts, Frontend::Headless, &dir, None).unwrap();
    cmd.args(tpm_args(&ctrl));
    let got = read_pcrs(cmd);
    // -kernel is not a boot option: PCR 4 follows the QEMU -kernel order.
    check(&got, &predicted["pcrs"]["blank"], "pcr4_qemu_kernel");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The signed production UKI as the first (only) boot option: the removable-media path of
/// a read-only vvfat ESP, Debian's SMM Secure Boot OVMF, the preset's raw store.
fn esp_boot(tag: &str, preset: &str) {
    let manifest = crate::common::manifest();
    let keys = nekos_packaging::keys::default_keys_dir();
    let predicted = measurements::compute(&manifest, &keys).unwrap();
    let want = &predicted["pcrs"][preset];
    assert_eq!(want["boots"], true, "{want:#}");
    let dir = scratch(tag);
    let (_swtpm, ctrl) = start_swtpm(&dir);
    let uki = &manifest.uki["production"];
    std::fs::create_dir_all(dir.join("esp/EFI/BOOT")).unwrap();
    private_copy(
        &uki.signed.path,
        &uki.signed.sha256,
        &dir.join("esp/EFI/BOOT/BOOTX64.EFI"),
    );
    let store = measurements::preset_store(preset, &keys).unwrap();
    let vars = dir.join("vars.fd");
    std::fs::write(&vars, store.to_raw_4m().unwrap()).unwrap();
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-nodefaults", "-no-user-config", "-no-reboot"])
        .args(["-machine", "q35,smm=on,accel=tcg", "-m", "512", "-smp", "1"])
        .args(["-global", "driver=cfi.pflash01,property=secure,value=on"])
        .args(["-global", "ICH9-LPC.disable_s3=1"])
        .arg("-drive")
        .arg("if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            vars.display()
        ))
        .arg("-drive")
        .arg(format!(
            "file=fat:{},format=raw,if=virtio,readonly=on",
            dir.join("esp").display()
        ))
        .args(["-display", "none", "-nic", "none", "-vga", "none"])
        .args(["-serial", "stdio", "-monitor", "none"])
        .args(tpm_args(&ctrl));
    let got = read_pcrs(cmd);
    check(&got, want, "pcr4");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blank_store_boot_option_pcrs_match_swtpm() {
    esp_boot("esp-blank", "blank");
}

#[test]
fn custom_store_boot_option_pcrs_match_swtpm() {
    esp_boot("esp-custom", "custom");
}

/// The project's firmware (QEMU_PV_VARS OVMF, TPM2) through the deployments users boot: the
/// signed UKI from the ESP disk image (a boot option: `pcr4`) or via `-kernel`
/// (`pcr4_qemu_kernel`), with the preset's JSON store in QEMU's uefi-vars device.
fn nekos_firmware_boot(
    tag: &str,
    deployment: &str,
    medium: deployments::Medium,
    preset: &str,
    pcr4_key: &str,
) {
    let manifest = crate::common::manifest();
    let keys = nekos_packaging::keys::default_keys_dir();
    let predicted = measurements::compute(&manifest, &keys).unwrap();
    let dir = scratch(tag);
    let (_swtpm, ctrl) = start_swtpm(&dir);
    let dep = deployments::find(deployment).unwrap();
    let opts = BootOptions {
        medium: Some(medium),
        ..BootOptions::default()
    };
    let mut cmd = qemu::command(dep, &manifest, &opts, Frontend::Headless, &dir, None).unwrap();
    cmd.args(tpm_args(&ctrl));
    let got = read_pcrs(cmd);
    check(&got, &predicted["pcrs"][preset], pcr4_key);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn project_firmware_custom_store_esp_boot_pcrs_match_swtpm() {
    nekos_firmware_boot(
        "nekos-fw-custom-esp",
        "fw,kernel,initramfs,uki,sb-pass",
        deployments::Medium::EspDisk,
        "custom",
        "pcr4",
    );
}

#[test]
fn project_firmware_blank_store_kernel_arg_pcrs_match_swtpm() {
    nekos_firmware_boot(
        "nekos-fw-blank-kernel",
        "fw,kernel,initramfs,uki",
        deployments::Medium::KernelArg,
        "blank",
        "pcr4_qemu_kernel",
    );
}

/// Stage 1 (stboot) extends PCR 12/13/14 before its kexec and the TPM keeps them across it,
/// so the package kernel's own prompt reads exactly what measurements.json predicts.
#[test]
fn stboot_pcrs_match_swtpm_after_the_kexec() {
    use crate::common::OrFail;
    let manifest = crate::common::manifest();
    let predicted =
        measurements::compute(&manifest, &nekos_packaging::keys::default_keys_dir()).unwrap();
    let want = &predicted["stboot"];
    let dir = scratch("stboot");
    let (_swtpm, ctrl) = start_swtpm(&dir);
    let dep = deployments::find("fw,kernel,initramfs,stboot").unwrap();
    let opts = BootOptions {
        tpm: Some(ctrl),
        log: Some(crate::common::log_path("measurements-stboot")),
        ..BootOptions::default()
    };
    let mut vm = qemu::Vm::start(dep, &manifest, &opts).or_fail();
    let limit = Duration::from_secs(240);
    vm.wait_for("nekos: stboot: measured PCR 12/13/14", limit)
        .or_fail();
    let kexec = vm.wait_from(0, "nekos: kexec now", limit).or_fail();
    let started = vm
        .wait_from(kexec, "nekos: started by stboot", limit)
        .or_fail();
    vm.wait_from(started, "nekos# ", limit).or_fail();
    for n in [12, 13, 14] {
        let out = vm
            .run_at_prompt(
                &format!("cat /sys/class/tpm/tpm0/pcr-sha256/{n}"),
                crate::common::STEP,
            )
            .or_fail();
        assert_eq!(
            single_pcr_value(&out, n),
            want[format!("pcr{n}")].as_str().unwrap(),
            "PCR {n}: read vs predicted\n{want:#}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
