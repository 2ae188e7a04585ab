//! `measurements.json`: everything a verifier needs to check a NekOS boot, computed from the
//! build manifest alone (no QEMU, no TPM).
//!
//! The document (object keys sorted, so the bytes depend only on the inputs):
//!
//! - `format`: `"nekos-measurements/1"`.
//! - `artifacts`: `"<kind>.<name>"` → `{sha256, size}` for every file the manifest lists:
//!   `kernel` (bzImage), `kernel.config`, `userland.<binary>`, `initramfs.<variant>`,
//!   `uki.<variant>.unsigned`, `uki.<variant>.signed`. The hashes are of the files as read
//!   now; a file that no longer matches the manifest's recorded sha256 is an error (stale
//!   manifest). `cats`: photo name → sha256 as the manifest recorded it (they live inside
//!   the initramfs). Paths are left out: they differ between machines.
//! - `uki`: the production UKI — `cmdline` (as recorded), `authenticode_sha256` (the same
//!   for the signed and unsigned file), `linux_authenticode_sha256` (its `.linux` section,
//!   which the stub loads with LoadImage), `pcr11_sha256` ([`crate::uki::predict_pcr11`]),
//!   `signer_certificate_sha256` (SHA-256 of the DER of the certificate in its signature).
//! - `pcrs`: per variable-store preset (`blank`, `custom`, `microsoft`), booting the
//!   production UKI as OVMF's first boot option (`-nic none`), SHA-256 bank, each PCR
//!   starting at zeros and extended as SHA256(old ‖ digest) ([`pcr`]):
//!   - `secure_boot`: whether OVMF enforces Secure Boot with that store;
//!   - `boots`: whether OVMF starts the NekOS-signed UKI; if not, `refused` says why and
//!     `pcr4`/`pcr11` are `null` (the Microsoft store: NekOS is not signed by Microsoft);
//!   - `pcr4`, `pcr7`, `pcr11`: predicted values (hex) once the stub has run (before any
//!     userspace extends). For a refused image `pcr7` holds the configuration events and
//!     the separator only (no authority event) — not judged on QEMU;
//!   - `pcr4_qemu_kernel`: PCR 4 when the UKI is passed with QEMU `-kernel` instead (the
//!     `fw,kernel,initramfs,uki` deployments): OVMF measures the image before the
//!     EV_EFI_ACTION and the separator ([`pcr`]); Secure Boot off only, else `null`;
//!   - `events`: `{pcr4: [...], pcr7: [...]}` (plus `pcr4_qemu_kernel` when predicted),
//!     each `{event, digest}` in extend order;
//!   - `authority` (Secure Boot on and booting): `{owner_guid, certificate_sha256}` of the
//!     db entry measured as the EV_EFI_VARIABLE_AUTHORITY;
//!   - `store_sha256`: SHA-256 of the store's QEMU `uefi-vars` JSON (identifies the inputs).
//! - `stboot` (when the build has the network-boot artifacts): what stage 1 extends before
//!   its kexec — `events` (`{pcr, digest, event}` in extend order: PCR 12 the OS package zip
//!   and descriptor, PCR 13 the trust policy, each signing-root certificate (DER) and the TLS
//!   roots, PCR 14 the host configuration) and the resulting `pcr12`, `pcr13`, `pcr14`
//!   (SHA-256 bank, from zero; kexec keeps them, so the NekOS kernel can read them);
//! - `sev_snp`: SEV-SNP launch digests (SHA-384, hex) of `-kernel/-initrd/-append` boots
//!   from the project's AmdSevX64 build (firmware/; Debian sid's pinned prebuilt image
//!   [`crate::snpmeasure::judge::pinned_ovmf_amdsev`] when the manifest has no firmware) with the
//!   production kernel, the production initramfs and the UKI's command line, hashed
//!   verbatim (never trimmed): `ovmf` `{build, input_hash, sha256}` (or `{package, version,
//!   sha256}` for Debian's), `kernel_sha256`,
//!   `initramfs_sha256`, `cmdline`, `guest_features`, `policy` (the launch policy the build
//!   expects: `{value, debug, migrate_ma, smt}`, QEMU's default 0x30000), and `launch_digests`:
//!   CPU type (`EPYC-v4`, `EPYC-Milan`, `EPYC-Genoa`) → vCPU count (`"1"`, `"2"`, `"4"`) →
//!   digest.
//!
//! Judged in packaging/tests/it/measurements_qemu.rs with swtpm (PCRs read from sysfs at the
//! prompt): `blank` and `custom` via a vvfat ESP boot option on Debian's SMM Secure Boot
//! OVMF, `blank`'s `pcr4_qemu_kernel` via the `fw,kernel,initramfs,uki` deployment. The
//! Microsoft store's refusal and its `pcr7` are not judged there.
//!
//! **arm64** ([`compute_for`] with [`Arch::Aarch64`], written to the aarch64 out dir's
//! `measurements.json`): the same document with `arch: "aarch64"`, the arm64 kernel `Image`
//! under `artifacts.kernel`, and `uki`/`pcrs` computed by the same code from the arm64 UKI
//! (systemd-stub 257 `linuxaa64.efi.stub`). No `sev_snp` (an x86-only technology) and no
//! `stboot`. The event sequences are those of OVMF, because ArmVirtQemu measures with the same
//! edk2 drivers (Tcg2Dxe: EV_EFI_ACTION + separators at ReadyToBoot, the PCR 7 variables;
//! DxeTpm2MeasureBootLib: the image's Authenticode hash as EV_EFI_BOOT_SERVICES_APPLICATION;
//! DxeImageVerificationLib: the db authority) and the aa64 stub is the same systemd-stub code,
//! measuring the same sections in the same order ([`crate::uki::PCR11_SECTIONS`]; the UKI has
//! no `.dtb`/`.dtbauto`, so nothing device-tree-specific is measured — the firmware's own DT
//! is installed by ArmVirtQemu and not measured into 4/7/11). A judge needs QEMU `virt` with
//! `-chardev socket,id=chrtpm,path=SOCK -tpmdev emulator,id=tpm0,chardev=chrtpm
//! -device tpm-tis-device,tpmdev=tpm0` and `swtpm socket --tpm2 --ctrl type=unixio,path=SOCK`
//! (see [`TPM_QEMU_ARGS_AARCH64`]).
//!
//! `compute` needs the keys directory (for the custom store: PK.crt, KEK.crt, db.crt,
//! GUID), the Microsoft certificates (data in packaging/varstore-certs, pinned in its
//! certs.lock) and the pinned Debian OVMF.amdsev.fd (packaging/debian-packages.lock), which
//! is fetched once and cached like everywhere else in the host tools.

pub use nekos_formats::pcr;

use crate::arch::Arch;
use crate::artifacts::{FileArtifact, Manifest};
use crate::snpmeasure::{self, VcpuType};
use crate::util::sha256_hex;
use crate::varstore::{self, Preset, Store};
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// The `format` field.
pub const FORMAT: &str = "nekos-measurements/1";
/// The UKI variant measured.
pub const VARIANT: &str = "production";
/// The presets predicted, in output order (keys are sorted anyway).
pub const PRESETS: [&str; 3] = ["blank", "custom", "microsoft"];
/// SEV-SNP vCPU counts.
pub const SNP_VCPUS: [u32; 3] = [1, 2, 4];
/// SEV-SNP guest policy the build expects: QEMU's `sev-snp-guest` default (bit 16 SMT
/// allowed, bit 17 reserved-must-be-one; no migration agent, no debugging).
pub const SNP_POLICY: u64 = 0x30000;
/// SEV-SNP CPU types (QEMU `-cpu` names).
pub const SNP_CPU_TYPES: [&str; 3] = ["EPYC-v4", "EPYC-Milan", "EPYC-Genoa"];
/// The default output file name under `target/nekos/` (and `target/nekos/aarch64/`).
pub const FILE_NAME: &str = "measurements.json";
/// The QEMU arguments (after the swtpm socket path is substituted for `{sock}`) that give an
/// arm64 `virt` guest the TPM the PCR predictions are judged against: x86's `tpm-tis` is an
/// ISA device, `virt` takes the sysbus `tpm-tis-device` (ArmVirtQemu finds it in the DT).
pub const TPM_QEMU_ARGS_AARCH64: [&str; 6] = [
    "-chardev",
    "socket,id=chrtpm,path={sock}",
    "-tpmdev",
    "emulator,id=tpm0,chardev=chrtpm",
    "-device",
    "tpm-tis-device,tpmdev=tpm0",
];

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// `{sha256, size}` of a file, checked against the sha256 the manifest recorded.
fn file_entry(what: &str, path: &Path, recorded: Option<&str>) -> Result<(Value, Vec<u8>)> {
    let bytes = read(path).with_context(|| format!("artifact {what}"))?;
    let sha = sha256_hex(&bytes);
    if let Some(r) = recorded
        && r != sha
    {
        bail!(
            "artifact {what} ({}) has sha256 {sha} but the manifest records {r}: the manifest \
             is stale (run `cargo nekos build`)",
            path.display()
        );
    }
    Ok((json!({"sha256": sha, "size": bytes.len()}), bytes))
}

fn artifact(what: &str, a: &FileArtifact) -> Result<Value> {
    Ok(file_entry(what, &a.path, Some(&a.sha256))?.0)
}

/// Rebuilds every object with its keys inserted in sorted order, so the serialized bytes
/// are the same whether or not serde_json preserves insertion order.
pub fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sorted(v));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The store of a preset name (`custom` from `keys_dir`).
pub fn preset_store(name: &str, keys_dir: &Path) -> Result<Store> {
    let preset = Preset::from_name(name, Some(keys_dir.to_path_buf()))?;
    varstore::build(&preset).with_context(|| format!("building the {name} variable store"))
}

/// [`pcr_entry`] for a UKI that must be `arch`'s: an x86_64 UKI predicted for an arm64 boot
/// (or the reverse) is refused, naming the architecture it is for.
pub fn pcr_entry_for(arch: Arch, store: &Store, signed_uki: &[u8]) -> Result<Value> {
    crate::uki::check_pe_arch(signed_uki, "the UKI whose PCRs are predicted", arch)?;
    pcr_entry(store, signed_uki)
}

/// The `pcrs.<preset>` object for one store and the signed UKI.
pub fn pcr_entry(store: &Store, signed_uki: &[u8]) -> Result<Value> {
    let p = pcr::predict(store, signed_uki)?;
    let events = |evs: &[pcr::Event]| -> Value {
        Value::Array(
            evs.iter()
                .map(|e| json!({"event": e.what, "digest": hex::encode(e.digest)}))
                .collect(),
        )
    };
    let value = |evs: &[pcr::Event]| hex::encode(pcr::replay(evs.iter().map(|e| &e.digest)));
    let mut m = Map::new();
    m.insert("secure_boot".into(), json!(p.secure_boot));
    m.insert("boots".into(), json!(p.refused.is_none()));
    m.insert("store_sha256".into(), json!(sha256_hex(&store.to_json())));
    let mut ev = Map::new();
    ev.insert("pcr4".into(), events(&p.pcr4));
    ev.insert("pcr7".into(), events(&p.pcr7));
    if let Some(q) = &p.pcr4_qemu_kernel {
        ev.insert("pcr4_qemu_kernel".into(), events(q));
    }
    m.insert("events".into(), Value::Object(ev));
    m.insert(
        "pcr4_qemu_kernel".into(),
        p.pcr4_qemu_kernel
            .as_deref()
            .map_or(Value::Null, |q| json!(value(q))),
    );
    m.insert("pcr7".into(), json!(value(&p.pcr7)));
    match &p.refused {
        Some(why) => {
            m.insert("refused".into(), json!(why));
            m.insert("pcr4".into(), Value::Null);
            m.insert("pcr11".into(), Value::Null);
        }
        None => {
            m.insert("pcr4".into(), json!(value(&p.pcr4)));
            m.insert("pcr11".into(), json!(p.pcr11.map(hex::encode)));
        }
    }
    if let Some(a) = &p.authority {
        m.insert(
            "authority".into(),
            json!({"owner_guid": a.owner.to_text(), "certificate_sha256": sha256_hex(&a.data)}),
        );
    }
    Ok(Value::Object(m))
}

/// The SEV-SNP part (see the module docs). `ovmf` is the AmdSev firmware image.
pub fn sev_snp_entry(ovmf: &[u8], kernel: &[u8], initrd: &[u8], cmdline: &str) -> Result<Value> {
    let fw = snpmeasure::firmware_digest(ovmf)?;
    let mut digests = Map::new();
    for cpu in SNP_CPU_TYPES {
        let vcpu_type =
            VcpuType::from_name(cpu).with_context(|| format!("unknown CPU type {cpu}"))?;
        let mut per = Map::new();
        for vcpus in SNP_VCPUS {
            let d = snpmeasure::launch_digest_prehashed(
                &snpmeasure::Inputs {
                    ovmf,
                    kernel: Some(kernel),
                    initrd: Some(initrd),
                    append: Some(cmdline),
                    vcpus,
                    vcpu_type,
                    guest_features: snpmeasure::DEFAULT_GUEST_FEATURES,
                },
                &fw,
            )?;
            per.insert(vcpus.to_string(), json!(hex::encode(d)));
        }
        digests.insert(cpu.to_string(), Value::Object(per));
    }
    Ok(json!({
        "kernel_sha256": sha256_hex(kernel),
        "initramfs_sha256": sha256_hex(initrd),
        "cmdline": cmdline,
        "guest_features": format!("{:#x}", snpmeasure::DEFAULT_GUEST_FEATURES),
        "launch_digests": digests,
        // The launch policy the build expects (QEMU's sev-snp-guest default, 0x30000): what
        // `snpcheck verify --expected-from` / `cargo nekos attest` hold POLICY to.
        "policy": {"value": format!("{SNP_POLICY:#x}"), "debug": false, "migrate_ma": false, "smt": true},
    }))
}

/// Computes the whole document (see the module docs) for `manifest` (of the architecture it
/// records); `keys_dir` holds the custom store's certificates.
pub fn compute(manifest: &Manifest, keys_dir: &Path) -> Result<Value> {
    compute_for(manifest.arch, manifest, keys_dir)
}

/// [`compute`] for `arch`'s manifest (`target/nekos/aarch64/manifest.json` for arm64): the
/// UKI must be a PE image for `arch`; arm64 has no `sev_snp` and no `stboot` part.
pub fn compute_for(arch: Arch, manifest: &Manifest, keys_dir: &Path) -> Result<Value> {
    let mut artifacts = Map::new();
    let kernel = manifest
        .kernel
        .as_ref()
        .context("the manifest has no kernel (run `cargo nekos build`)")?;
    let (kv, kernel_bytes) = file_entry("kernel", &kernel.bzimage, Some(&kernel.sha256))?;
    artifacts.insert("kernel".into(), kv);
    artifacts.insert(
        "kernel.config".into(),
        file_entry("kernel.config", &kernel.config, None)?.0,
    );
    for (name, a) in &manifest.userland {
        let k = format!("userland.{name}");
        artifacts.insert(k.clone(), artifact(&k, a)?);
    }
    for (name, a) in &manifest.initramfs {
        let k = format!("initramfs.{name}");
        artifacts.insert(k.clone(), artifact(&k, a)?);
    }
    for (name, u) in &manifest.uki {
        for (kind, a) in [("unsigned", &u.unsigned), ("signed", &u.signed)] {
            let k = format!("uki.{name}.{kind}");
            artifacts.insert(k.clone(), artifact(&k, a)?);
        }
    }

    let uki = manifest
        .uki
        .get(VARIANT)
        .with_context(|| format!("the manifest has no {VARIANT} UKI (run `cargo nekos build`)"))?;
    let signed = read(&uki.signed.path)?;
    let unsigned = read(&uki.unsigned.path)?;
    let auth = hex::encode(crate::authenticode::authenticode_sha256(&signed)?);
    let auth_unsigned = hex::encode(crate::authenticode::authenticode_sha256(&unsigned)?);
    if auth != auth_unsigned || auth != uki.authenticode_sha256 {
        bail!(
            "Authenticode hashes disagree: signed {auth}, unsigned {auth_unsigned}, manifest {} \
             (stale manifest? run `cargo nekos build`)",
            uki.authenticode_sha256
        );
    }
    crate::uki::check_pe_arch(&signed, &uki.signed.path.display().to_string(), arch)?;
    let signer =
        crate::authenticode::verify(&signed, None).context("the signed UKI's signature")?;
    let pcr11 = crate::uki::predict_pcr11(&signed)?;
    let uki_value = json!({
        "variant": VARIANT,
        "cmdline": uki.cmdline,
        "authenticode_sha256": auth,
        "linux_authenticode_sha256": hex::encode(pcr::linux_authenticode_sha256(&signed)?),
        "pcr11_sha256": hex::encode(pcr11),
        "signer_certificate_sha256": sha256_hex(&signer.signer_cert_der),
    });

    let mut pcrs = Map::new();
    for name in PRESETS {
        let store = preset_store(name, keys_dir)?;
        pcrs.insert(
            name.into(),
            pcr_entry(&store, &signed).with_context(|| format!("preset {name}"))?,
        );
    }
    if arch != Arch::X86_64 {
        return Ok(sorted(json!({
            "format": FORMAT,
            "arch": arch.name(),
            "artifacts": artifacts,
            "cats": manifest.cats,
            "uki": uki_value,
            "pcrs": pcrs,
        })));
    }

    // The project's own AmdSevX64 build when the manifest has one (firmware/), else Debian
    // sid's prebuilt image: the digest is only meaningful for the firmware actually launched.
    let initrd = read(manifest.initramfs_path(VARIANT)?)?;
    let mut snp = match &manifest.firmware {
        Some(fw) => {
            let ovmf = read(&fw.amdsev)?;
            let mut snp = sev_snp_entry(&ovmf, &kernel_bytes, &initrd, &uki.cmdline)?;
            snp["ovmf"] = json!({
                "build": "nekos firmware/ (edk2 2025.02-8+deb13u1 + QEMU_PV_VARS patches), AmdSevX64",
                "input_hash": fw.input_hash,
                "sha256": sha256_hex(&ovmf),
            });
            snp
        }
        None => {
            let ovmf = read(&snpmeasure::judge::pinned_ovmf_amdsev()?)?;
            let mut snp = sev_snp_entry(&ovmf, &kernel_bytes, &initrd, &uki.cmdline)?;
            let pin = snpmeasure::judge::ovmf_amdsev_pin()?;
            snp["ovmf"] = json!({"package": pin.package, "version": pin.version, "sha256": sha256_hex(&ovmf)});
            snp
        }
    };
    snp["ovmf"]["direct_boot"] = json!(true);

    let mut doc = json!({
        "format": FORMAT,
        "artifacts": artifacts,
        "cats": manifest.cats,
        "uki": uki_value,
        "pcrs": pcrs,
        "sev_snp": snp,
    });
    if let Some(st) = &manifest.stboot {
        doc["stboot"] = stboot_entry(st)?;
    }
    Ok(sorted(doc))
}

/// What stage 1 extends into PCR 12/13/14 before the kexec (init/stboot/src/measure.rs, in
/// that order) for the built stage-1 image and OS package, and the resulting PCR values
/// (SHA-256 bank, from zero). The file bytes are checked against the hashes the manifest
/// recorded for the stage-1 initramfs, so a prediction can never describe other inputs.
pub fn stboot_entry(st: &crate::stboot::StbootArtifact) -> Result<Value> {
    use crate::stboot as sb;
    let keys = crate::stboot::Keys::of(st)?;
    let policy = sb::trust_policy_json();
    let roots_pem = keys.read(sb::OSPKG_ROOT_CERT)?;
    let tls_pem = keys.read(sb::TLS_CA_CERT)?;
    let host = sb::host_configuration_json();
    for (path, bytes) in [
        ("/etc/trust_policy/trust_policy.json", &policy),
        ("/etc/trust_policy/ospkg_signing_root.pem", &roots_pem),
        ("/etc/trust_policy/tls_roots.pem", &tls_pem),
        ("/etc/host_configuration.json", &host),
    ] {
        let recorded = st
            .initramfs
            .inputs
            .get(path)
            .map(String::as_str)
            .unwrap_or("(none)");
        if recorded != sha256_hex(bytes) {
            anyhow::bail!(
                "stage-1 {path}: the manifest records sha256 {recorded}, the inputs now give {} (run `cargo nekos build`)",
                sha256_hex(bytes)
            );
        }
    }
    let mut events: Vec<(u32, [u8; 32], String)> = Vec::new();
    let digest = |hex_text: &str| -> Result<[u8; 32]> {
        let v = hex::decode(hex_text)?;
        v.try_into()
            .map_err(|_| anyhow::anyhow!("not a sha256: {hex_text}"))
    };
    events.push((
        12,
        digest(&st.ospkg_zip.sha256)?,
        format!("ospkg zip {}", sb::PACKAGE_URL),
    ));
    events.push((
        12,
        digest(&st.ospkg_descriptor.sha256)?,
        format!("ospkg descriptor {}", st.descriptor_url),
    ));
    events.push((13, nekos_ospkg::sha256(&policy), "trust policy".into()));
    // Only CERTIFICATE blocks are measured, in file order (as stage 1 does).
    let roots: Vec<_> = nekos_ospkg::pem_decode_all(&roots_pem)
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .collect();
    if roots.is_empty() {
        anyhow::bail!(
            "{}: no CERTIFICATE block",
            keys.path(sb::OSPKG_ROOT_CERT).display()
        );
    }
    for (i, block) in roots.iter().enumerate() {
        events.push((
            13,
            nekos_ospkg::sha256(&block.der),
            format!("signing root {i} (DER)"),
        ));
    }
    events.push((13, nekos_ospkg::sha256(&tls_pem), "tls roots".into()));
    events.push((14, nekos_ospkg::sha256(&host), "host configuration".into()));
    let mut out = Map::new();
    for n in [12u32, 13, 14] {
        let evs: Vec<&(u32, [u8; 32], String)> = events.iter().filter(|e| e.0 == n).collect();
        let value = pcr::replay(evs.iter().map(|e| &e.1));
        out.insert(format!("pcr{n}"), json!(hex::encode(value)));
    }
    out.insert(
        "events".into(),
        Value::Array(
            events
                .iter()
                .map(|(p, d, what)| json!({"pcr": p, "digest": hex::encode(d), "event": what}))
                .collect(),
        ),
    );
    out.insert("descriptor_url".into(), json!(st.descriptor_url));
    out.insert("threshold".into(), json!(st.threshold));
    Ok(Value::Object(out))
}

/// The serialized document: pretty JSON (2-space indent, sorted keys), trailing newline.
pub fn to_bytes(value: &Value) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(&sorted(value.clone()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes the document atomically (temporary file + rename).
pub fn write(path: &Path, value: &Value) -> Result<()> {
    crate::util::write_atomic(path, &to_bytes(value)?)
}

/// The default output: `target/nekos/measurements.json` of the workspace.
pub fn default_out(root: &Path) -> PathBuf {
    crate::artifacts::out_dir(root).join(FILE_NAME)
}

/// `arch`'s default output: `target/nekos/aarch64/measurements.json` for arm64.
pub fn default_out_for(arch: Arch, root: &Path) -> PathBuf {
    arch.out_dir(&crate::artifacts::out_dir(root))
        .join(FILE_NAME)
}
