//! The network boot (stboot, issue #9) on the project's firmware under TCG: the signed
//! stage-1 UKI fetches the OS package from the project's HTTPS server (127.0.0.1:18443, the
//! guest's 10.0.2.2), verifies it and kexecs it — cats on screen, `started by stboot`. The
//! attack deployments pass only on stage 1's reason line and fail if the package's kernel
//! ever starts. The server port is fixed (it is in the signed stage-1 image), so the QEMU
//! tests here take one lock and run one at a time.
//!
//! Also: the stboot artifacts are reproducible (built twice from the same inputs and keys,
//! byte for byte) and the recorded hashes match the files.

use crate::common::*;
use nekos_packaging::deployments::{self, Outcome, STAGE1_RETRY, STARTED_BY_STBOOT};
use nekos_packaging::qemu::{BootOptions, Vm};
use nekos_packaging::stboot_server::{LoggedRequest, NginxCase, Running, Server};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One stboot guest (and server) at a time: the port is fixed.
static PORT_LOCK: Mutex<()> = Mutex::new(());

/// Both kernels under TCG, the package (≈13 MB) over TLS in between.
const STBOOT_BOOT: Duration = Duration::from_secs(240);

fn lock() -> std::sync::MutexGuard<'static, ()> {
    PORT_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn start(test: &str, deployment: &str) -> Vm {
    let dep = deployments::find(deployment).unwrap();
    let opts = BootOptions {
        log: Some(log_path(test)),
        ..BootOptions::default()
    };
    Vm::start(dep, &manifest(), &opts).or_fail()
}

/// Counts `needle` in the transcript.
fn count(vm: &Vm, needle: &str) -> usize {
    vm.transcript().matches(needle).count()
}

fn assert_network_boot_shows_cats(test: &str, deployment: &str) {
    let _guard = lock();
    let dep = deployments::find(deployment).unwrap();
    let vm = start(test, deployment);
    let t0 = Instant::now();
    vm.wait_for(
        "nekos: stboot: trust policy found, running stage 1",
        STBOOT_BOOT,
    )
    .or_fail();
    if dep.secure_boot() == Some(true) {
        vm.wait_for("EFI stub: UEFI Secure Boot is enabled.", STEP)
            .or_fail();
    }
    vm.wait_for("nekos: stboot: network up ", STBOOT_BOOT)
        .or_fail();
    vm.wait_for(
        "nekos: stboot: fetched descriptor https://10.0.2.2:18443/nekos.json",
        STBOOT_BOOT,
    )
    .or_fail();
    vm.wait_for(
        "nekos: stboot: fetched ospkg https://10.0.2.2:18443/nekos.zip",
        STBOOT_BOOT,
    )
    .or_fail();
    let m = manifest();
    let st = m.stboot().unwrap();
    vm.wait_for(
        &format!(
            "nekos: stboot: verified 2 signatures (threshold 2) zip sha256 {}",
            st.ospkg_zip.sha256
        ),
        STEP,
    )
    .or_fail();
    // The measurement lines name what a verifier predicts from this build.
    let hex = |b: &[u8]| nekos_packaging::util::sha256_hex(b);
    for (pcr, digest, what) in [
        (
            12,
            st.ospkg_zip.sha256.clone(),
            "ospkg zip https://10.0.2.2:18443/nekos.zip",
        ),
        (
            12,
            st.ospkg_descriptor.sha256.clone(),
            "ospkg descriptor https://10.0.2.2:18443/nekos.json",
        ),
        (
            13,
            hex(&nekos_packaging::stboot::trust_policy_json()),
            "trust policy",
        ),
        (
            14,
            hex(&nekos_packaging::stboot::host_configuration_json()),
            "host configuration",
        ),
    ] {
        vm.wait_for(
            &format!("nekos: stboot: pcr-event {pcr} sha256 {digest} {what}"),
            STBOOT_BOOT,
        )
        .or_fail();
    }
    vm.wait_for("nekos: stboot: kexec NekOS production", STBOOT_BOOT)
        .or_fail();
    let kexec_at = vm.wait_from(0, "nekos: kexec now", STBOOT_BOOT).or_fail();
    // The package's kernel: a second banner after the kexec, then its init.
    let second = vm
        .wait_from(kexec_at, "Linux version", STBOOT_BOOT)
        .or_fail();
    let started = vm
        .wait_from(second, STARTED_BY_STBOOT, STBOOT_BOOT)
        .or_fail();
    vm.wait_from(started, "nekos: boot ok", STBOOT_BOOT)
        .or_fail();
    let boot_ok = t0.elapsed();
    // Init starts the display before it prints its banner, so the
    // display's lines are searched from the second kernel's banner.
    vm.wait_from(second, "nekos: display: compositor started", STBOOT_BOOT)
        .or_fail();
    showing(&vm, second);
    wait_for_announced_picture(&vm, second, test);
    eprintln!(
        "{deployment}: QEMU start → second kernel's boot ok {:.1}s, cats on screen {:.1}s",
        boot_ok.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    vm.assert_absent("Kernel panic").or_fail();
    assert_eq!(
        count(&vm, "Linux version"),
        2,
        "exactly two kernels: stage 1 and the package's"
    );
    let requests = vm.server_requests();
    assert!(
        requests.iter().any(|r| r == "GET /nekos.json -> 200 OK"),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r == "GET /nekos.zip -> 200 OK"),
        "{requests:?}"
    );
}

/// Stage 1 says why, ends the attempt (its retry line) and the package's kernel never
/// starts; then the VM is stopped (stage 1 would retry until its deadline and reboot).
fn assert_stage1_refuses(test: &str, deployment: &str) {
    let _guard = lock();
    let dep = deployments::find(deployment).unwrap();
    let Outcome::Stage1Refused(reason) = dep.outcome else {
        panic!("{deployment} is not a refusal")
    };
    let vm = start(test, deployment);
    let t0 = Instant::now();
    vm.wait_for(
        "nekos: stboot: trust policy found, running stage 1",
        STBOOT_BOOT,
    )
    .or_fail();
    // The failed attempt is over (its retry line): nothing was loaded.
    let at = vm.wait_from(0, STAGE1_RETRY, STBOOT_BOOT).or_fail();
    eprintln!(
        "{deployment}: refused after {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let text = vm.transcript();
    let why = text[..at]
        .lines()
        .filter(|l| l.contains("nekos: stboot: "))
        .find(|l| l.contains(reason));
    assert!(
        why.is_some(),
        "{deployment}: no stboot failure line says {reason:?}:\n{}",
        &text[..at]
    );
    eprintln!("{deployment}: {}", why.unwrap_or_default().trim());
    for never in [
        STARTED_BY_STBOOT,
        "nekos: stboot: loaded ",
        "nekos: stboot: kexec ",
        "nekos: kexec now",
    ] {
        vm.assert_absent(never).or_fail();
    }
    assert_eq!(
        count(&vm, "Linux version"),
        1,
        "only the stage-1 kernel ran"
    );
    // What the server saw: the untrusted one only failed handshakes, the others the
    // descriptor request.
    let requests = vm.server_requests();
    match dep.server() {
        None => assert!(requests.is_empty()),
        Some(Server::UntrustedTls) => {
            assert!(
                !requests.is_empty() && requests.iter().all(|r| r.starts_with("error: ")),
                "{requests:?}"
            )
        }
        Some(Server::Ospkg(_)) => assert!(
            requests.iter().any(|r| r == "GET /nekos.json -> 200 OK"),
            "{requests:?}"
        ),
        // Only the redirects: the untrusted target never got as far as a request.
        Some(Server::Nginx(_)) => assert!(
            !requests.is_empty() && requests.iter().all(|r| r == "GET /nekos.json -> 302"),
            "{requests:?}"
        ),
    }
}

#[test]
fn stboot_blank_store_boots_the_os_package_to_cats() {
    assert_network_boot_shows_cats("stboot", "fw,kernel,initramfs,stboot");
}

#[test]
fn stboot_sb_pass_boots_the_os_package_to_cats() {
    assert_network_boot_shows_cats("stboot-sb-pass", "fw,kernel,initramfs,stboot,sb-pass");
}

/// Host-side judge of what nginx sends (not the guest's view): `curl -sv` against
/// 127.0.0.1 with the test CA; returns curl's trace (lower case, headers as `< name: value`)
/// and the body as received (not decoded).
fn curl(args: &[&str], path: &str) -> (String, Vec<u8>) {
    let m = manifest();
    let keys = nekos_packaging::stboot::Keys::of(m.stboot().unwrap()).unwrap();
    let ca = keys.path(nekos_packaging::stboot::TLS_CA_CERT);
    let out = std::process::Command::new("curl")
        .args(["-sS", "-v", "--max-time", "30", "--cacert"])
        .arg(&ca)
        .args(args)
        .arg(format!(
            "https://127.0.0.1:{}{path}",
            nekos_packaging::stboot::PORT
        ))
        .output()
        .expect("curl (Debian package curl)");
    let trace = String::from_utf8_lossy(&out.stderr)
        .replace('\r', "")
        .to_ascii_lowercase();
    assert!(out.status.success(), "curl {args:?} {path}: {trace}");
    (trace, out.stdout)
}

/// What nginx itself does in each case, asked by curl while the guest boots.
fn judge_nginx_with_curl(case: NginxCase) {
    let m = manifest();
    let st = m.stboot().unwrap();
    let zip = std::fs::read(&st.ospkg_zip.path).unwrap();
    let json = std::fs::read(&st.ospkg_descriptor.path).unwrap();
    let has = |trace: &str, line: &str| trace.lines().any(|l| l.trim_end() == line);
    // Every case: TLS with ALPN offering h2 (curl asks for h2, nginx accepts it).
    let (t, body) = curl(&["--http2"], "/nekos.json");
    assert!(t.contains("alpn: server accepted h2"), "{t}");
    let h2 = case != NginxCase::Redirect && case != NginxCase::Gzip;
    if h2 {
        assert_eq!(body, json);
    }
    let (t, body) = curl(&["--http1.1"], "/nekos.zip");
    assert!(t.contains("alpn: server accepted http/1.1"), "{t}");
    match case {
        NginxCase::Plain => {
            assert!(has(&t, &format!("< content-length: {}", zip.len())), "{t}");
            assert!(has(&t, "< connection: keep-alive"), "{t}");
            assert_eq!(body, zip);
        }
        NginxCase::Redirect => {
            assert!(t.contains("< http/1.1 301 moved permanently"), "{t}");
            assert!(has(&t, "< location: /other/nekos.zip"), "{t}");
            let (t, _) = curl(&["--http1.1"], "/nekos.json");
            assert!(t.contains("< http/1.1 302 moved temporarily"), "{t}");
            assert!(
                has(&t, "< location: https://127.0.0.1:18443/other/nekos.json"),
                "{t}"
            );
            let (_, body) = curl(&["--http1.1", "-L"], "/nekos.json");
            assert_eq!(body, json);
        }
        NginxCase::Gzip => {
            assert!(
                !t.contains("< content-encoding:"),
                "the zip is not gzipped: {t}"
            );
            assert_eq!(body, zip);
            let (t, body) = curl(&["--http1.1", "-H", "Accept-Encoding: gzip"], "/nekos.json");
            assert!(has(&t, "< content-encoding: gzip"), "{t}");
            assert!(has(&t, "< transfer-encoding: chunked"), "{t}");
            assert!(body.starts_with(&[0x1f, 0x8b]) && body != json, "not gzip");
        }
        NginxCase::Chunked => {
            assert!(has(&t, "< transfer-encoding: chunked"), "{t}");
            assert!(!t.contains("< content-length:"), "{t}");
            assert!(!t.contains("< content-encoding:"), "{t}");
            // The length-changing filter changed nothing.
            assert_eq!(body, zip);
            let (t, body) = curl(&["--http1.1"], "/nekos.json");
            assert!(has(&t, "< transfer-encoding: chunked"), "{t}");
            assert_eq!(body, json);
        }
        NginxCase::KeepaliveOff => {
            assert!(has(&t, "< connection: close"), "{t}");
            assert_eq!(body, zip);
        }
        NginxCase::RedirectUntrusted => unreachable!("a refusal, see assert_stage1_refuses"),
    }
}

/// The guest's requests in nginx's access log (stage 1's User-Agent; curl's are left out).
fn guest_requests(vm: &Vm) -> Vec<LoggedRequest> {
    let Some(Running::Nginx(nginx)) = vm.server() else {
        panic!("{}: not an nginx deployment", vm.name)
    };
    nginx
        .requests()
        .unwrap()
        .into_iter()
        .filter(|r| r.user_agent.starts_with("nekos-stboot/"))
        .collect()
}

/// An nginx case boots: stage 1 gets the descriptor and the zip byte for byte (the console
/// names the final URLs, lengths and SHA-256 of what it received), verifies, kexecs, and the
/// package's init says it was started by stboot. nginx's log shows what the guest was sent.
fn assert_nginx_boot(test: &str, deployment: &str) {
    let _guard = lock();
    let dep = deployments::find(deployment).unwrap();
    let Some(Server::Nginx(case)) = dep.server() else {
        panic!("{deployment} is not served by nginx")
    };
    let vm = start(test, deployment);
    let t0 = Instant::now();
    judge_nginx_with_curl(case);
    let m = manifest();
    let st = m.stboot().unwrap();
    let (json_path, zip_path) = match case {
        NginxCase::Redirect => ("/other/nekos.json", "/other/nekos.zip"),
        _ => ("/nekos.json", "/nekos.zip"),
    };
    vm.wait_for(
        &format!(
            "nekos: stboot: fetched descriptor https://10.0.2.2:18443{json_path} ({} bytes, sha256 {})",
            st.ospkg_descriptor.size, st.ospkg_descriptor.sha256
        ),
        STBOOT_BOOT,
    )
    .or_fail();
    vm.wait_for(
        &format!(
            "nekos: stboot: fetched ospkg https://10.0.2.2:18443{zip_path} ({} bytes, sha256 {})",
            st.ospkg_zip.size, st.ospkg_zip.sha256
        ),
        STBOOT_BOOT,
    )
    .or_fail();
    vm.wait_for("nekos: stboot: verified 2 signatures (threshold 2)", STEP)
        .or_fail();
    let kexec_at = vm.wait_from(0, "nekos: kexec now", STBOOT_BOOT).or_fail();
    vm.wait_from(kexec_at, STARTED_BY_STBOOT, STBOOT_BOOT)
        .or_fail();
    eprintln!(
        "{deployment}: QEMU start → started by stboot {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    vm.assert_absent("Kernel panic").or_fail();
    assert_eq!(count(&vm, "Linux version"), 2, "stage 1 and the package's");

    let got = guest_requests(&vm);
    for r in &got {
        eprintln!("{deployment}: nginx log: {r:?}");
        // ureq speaks HTTP/1.1 only, whatever nginx's ALPN offers.
        assert_eq!(r.protocol, "HTTP/1.1", "{r:?}");
        assert_ne!(r.alpn, "h2", "{r:?}");
    }
    let short: Vec<String> = got.iter().map(|r| r.short()).collect();
    let want: &[&str] = match case {
        NginxCase::Redirect => &[
            "GET /nekos.json -> 302",
            "GET /other/nekos.json -> 200",
            "GET /nekos.zip -> 301",
            "GET /other/nekos.zip -> 200",
        ],
        _ => &["GET /nekos.json -> 200", "GET /nekos.zip -> 200"],
    };
    assert_eq!(short, want, "{got:?}");
    let ok: Vec<&LoggedRequest> = got.iter().filter(|r| r.status == 200).collect();
    let (json, zip) = (ok[0], ok[1]);
    match case {
        NginxCase::Plain => {
            for r in [json, zip] {
                assert_eq!(
                    (r.content_encoding.as_str(), r.transfer_encoding.as_str()),
                    ("", ""),
                    "{r:?}"
                );
            }
            // (No keep-alive check here: stage 1 pools nothing and hangs up after each
            // body, which nginx logs as `close`; curl above saw nginx keep connections
            // alive.)
            assert_eq!(json.content_length, st.ospkg_descriptor.size.to_string());
            assert_eq!(zip.content_length, st.ospkg_zip.size.to_string());
        }
        NginxCase::Redirect => {
            assert_eq!(
                got[0].location, "https://10.0.2.2:18443/other/nekos.json",
                "absolute Location"
            );
            assert_eq!(got[2].location, "/other/nekos.zip", "relative Location");
        }
        NginxCase::Gzip => {
            // Stage 1 offered gzip and got it, and decoded it (the console's sha256 above
            // is the file's).
            assert_eq!(json.content_encoding, "gzip", "{json:?}");
            assert_eq!(json.transfer_encoding, "chunked", "{json:?}");
            assert_eq!(zip.content_encoding, "", "{zip:?}");
        }
        NginxCase::Chunked => {
            for r in [json, zip] {
                assert_eq!(r.transfer_encoding, "chunked", "{r:?}");
                assert_eq!(
                    (r.content_length.as_str(), r.content_encoding.as_str()),
                    ("", "")
                );
            }
        }
        NginxCase::KeepaliveOff => {
            // That nginx closes even when the client wants to keep the connection is
            // curl's check above; here: the guest's two GETs on two connections.
            for r in [json, zip] {
                assert_eq!(r.connection_header, "close", "{r:?}");
            }
            assert_ne!(json.connection, zip.connection, "one connection per GET");
        }
        NginxCase::RedirectUntrusted => unreachable!(),
    }
}

#[test]
fn nginx_plain_boots_the_os_package() {
    assert_nginx_boot("stboot-nginx", "fw,kernel,initramfs,stboot,nginx");
}

#[test]
fn nginx_redirects_are_followed() {
    assert_nginx_boot(
        "stboot-nginx-redirect",
        "fw,kernel,initramfs,stboot,nginx,redirect",
    );
}

#[test]
fn nginx_gzip_descriptor_is_decoded() {
    assert_nginx_boot("stboot-nginx-gzip", "fw,kernel,initramfs,stboot,nginx,gzip");
}

#[test]
fn nginx_chunked_bodies_are_read() {
    assert_nginx_boot(
        "stboot-nginx-chunked",
        "fw,kernel,initramfs,stboot,nginx,chunked",
    );
}

#[test]
fn nginx_without_keepalive_boots() {
    assert_nginx_boot(
        "stboot-nginx-keepalive-off",
        "fw,kernel,initramfs,stboot,nginx,keepalive-off",
    );
}

#[test]
fn nginx_redirect_to_an_untrusted_server_is_refused() {
    assert_stage1_refuses(
        "stboot-nginx-redirect-untrusted",
        "fw,kernel,initramfs,stboot,nginx,redirect-untrusted",
    );
}

#[test]
fn ospkg_tampered_zip_is_refused() {
    assert_stage1_refuses(
        "stboot-ospkg-tampered-zip",
        "fw,kernel,initramfs,stboot,ospkg-tampered-zip",
    );
}

#[test]
fn ospkg_wrong_signer_is_refused() {
    assert_stage1_refuses(
        "stboot-ospkg-wrong-signer",
        "fw,kernel,initramfs,stboot,ospkg-wrong-signer",
    );
}

#[test]
fn ospkg_expired_cert_is_refused() {
    assert_stage1_refuses(
        "stboot-ospkg-expired-cert",
        "fw,kernel,initramfs,stboot,ospkg-expired-cert",
    );
}

#[test]
fn ospkg_below_threshold_is_refused() {
    assert_stage1_refuses(
        "stboot-ospkg-below-threshold",
        "fw,kernel,initramfs,stboot,ospkg-below-threshold",
    );
}

#[test]
fn ospkg_malformed_descriptor_is_refused() {
    assert_stage1_refuses(
        "stboot-ospkg-malformed-descriptor",
        "fw,kernel,initramfs,stboot,ospkg-malformed-descriptor",
    );
}

#[test]
fn https_untrusted_server_is_refused() {
    assert_stage1_refuses(
        "stboot-https-untrusted-server",
        "fw,kernel,initramfs,stboot,https-untrusted-server",
    );
}

#[test]
fn server_unreachable_boots_nothing() {
    assert_stage1_refuses(
        "stboot-server-unreachable",
        "fw,kernel,initramfs,stboot,server-unreachable",
    );
}

// --- no QEMU below ---

/// The recorded hashes are the files' and the package verifies with the stage-1 trust
/// policy and signing root as recorded (the host-side twin of what stage 1 checks).
#[test]
fn manifest_records_the_stboot_artifacts() {
    use nekos_packaging::util::sha256_file;
    let m = manifest();
    let st = m.stboot().unwrap();
    for a in [
        &st.initramfs,
        &st.uki.unsigned,
        &st.uki.signed,
        &st.ospkg_zip,
        &st.ospkg_descriptor,
    ] {
        assert_eq!(
            sha256_file(&a.path).unwrap(),
            a.sha256,
            "{}",
            a.path.display()
        );
    }
    let keys = nekos_packaging::stboot::Keys::of(st).unwrap();
    let root = keys.read(nekos_packaging::stboot::OSPKG_ROOT_CERT).unwrap();
    let policy =
        nekos_ospkg::TrustPolicy::from_json(&nekos_packaging::stboot::trust_policy_json()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let zip = std::fs::read(&st.ospkg_zip.path).unwrap();
    let json = std::fs::read(&st.ospkg_descriptor.path).unwrap();
    let v = nekos_ospkg::verify_package(
        &json,
        &zip,
        &policy,
        &root,
        now,
        nekos_ospkg::Limits::default(),
    )
    .unwrap();
    assert_eq!(v.kernel, std::fs::read(m.kernel_path().unwrap()).unwrap());
    assert_eq!(
        v.initramfs,
        std::fs::read(m.initramfs_path("production").unwrap()).unwrap()
    );
    assert_eq!(v.cmdline, nekos_packaging::stboot::package_cmdline());
    // No private key in the stage-1 image or the package, neither as PEM nor as DER.
    let initramfs = std::fs::read(&st.initramfs.path).unwrap();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for entry in std::fs::read_dir(&keys.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "key") {
            let pem = std::fs::read(&path).unwrap();
            for block in nekos_ospkg::pem_decode_all(&pem) {
                for image in [&initramfs, &zip] {
                    assert!(
                        !contains(image, &block.der),
                        "{} is inside an image",
                        path.display()
                    );
                }
            }
            assert!(
                !contains(&initramfs, &pem[30..60]),
                "{} is inside the stage-1 initramfs",
                path.display()
            );
        }
    }
}

/// Same inputs, same keys → the same stage-1 initramfs, UKI (unsigned and signed), zip and
/// descriptor, built twice into fresh directories.
#[test]
fn stboot_artifacts_are_reproducible() {
    let m = manifest();
    let st = m.stboot().unwrap();
    let root = std::env::var("NEKOS_WORKSPACE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    let base = std::env::temp_dir().join(format!("nekos-stboot-repro-{}", std::process::id()));
    let mut outs = Vec::new();
    for run in ["a", "b"] {
        let dir = base.join(run);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let art = nekos_packaging::stboot::build_into(
            &root,
            &m,
            &nekos_packaging::stboot::Keys::of(st).unwrap(),
            &dir,
        )
        .unwrap();
        outs.push(art);
    }
    let (a, b) = (&outs[0], &outs[1]);
    for (x, y, what) in [
        (&a.initramfs, &b.initramfs, "stage-1 initramfs"),
        (&a.uki.unsigned, &b.uki.unsigned, "stage-1 UKI"),
        (&a.uki.signed, &b.uki.signed, "signed stage-1 UKI"),
        (&a.ospkg_zip, &b.ospkg_zip, "OS package zip"),
        (
            &a.ospkg_descriptor,
            &b.ospkg_descriptor,
            "signed descriptor",
        ),
    ] {
        assert_ne!(x.path, y.path);
        assert_eq!(
            std::fs::read(&x.path).unwrap(),
            std::fs::read(&y.path).unwrap(),
            "{what} differs between two builds"
        );
        eprintln!("{what}: sha256 {} ({} bytes)", x.sha256, x.size);
    }
    // And the same as `cargo nekos build` recorded.
    assert_eq!(a.uki.signed.sha256, st.uki.signed.sha256);
    assert_eq!(a.ospkg_zip.sha256, st.ospkg_zip.sha256);
    assert_eq!(a.ospkg_descriptor.sha256, st.ospkg_descriptor.sha256);
    let _ = std::fs::remove_dir_all(&base);
}
