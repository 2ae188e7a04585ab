//! One target per parser of untrusted input, each called the way its user calls it,
//! with seeds from the repository's fixtures, inputs generated here (small signed
//! packages and UKIs, so most inputs are fast), and the built artifacts under
//! `target/nekos/` when they exist (large ones are drawn rarely; engine.rs).
//!
//! Not here, because no code of ours reads them: the variable store's JSON (we only
//! write it; QEMU reads it) and cpio archives (we only write newc; the kernel
//! unpacks the initramfs).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::Target;

/// Names and what each calls, in run order.
pub const TARGETS: &[(&str, &str)] = &[
    (
        "snp-report",
        "snpcheck: report::from_file_bytes (binary or hex), fields/JSON, verify::verify against the Milan chain",
    ),
    (
        "snp-certtable",
        "snpcheck: certtable::parse, CertSet::add_file (table or certificates), chain signatures",
    ),
    (
        "snp-certs",
        "snpcheck: certs::load (PEM/DER VCEK, VLEK, ASK, ARK): roles, products, extensions, signature by the ASK",
    ),
    (
        "ospkg-descriptor",
        "nekos-ospkg: verify_package with the descriptor mutated (JSON, certificates, signatures)",
    ),
    (
        "ospkg-zip",
        "nekos-ospkg: OsPackageArchive::parse and entry_names (zip reader, manifest)",
    ),
    (
        "pe",
        "nekos-formats: PeFile::parse, sections, certificate table, Authenticode hash, extract_signature",
    ),
    (
        "uki",
        "nekos-formats: uki::inspect, predict_pcr11, authenticode::verify",
    ),
    (
        "varstore-raw",
        "nekos-formats: varstore::parse_template and parse_raw (OVMF_VARS images)",
    ),
    (
        "varstore-cert",
        "nekos-formats: varstore::Cert::parse (certificate files for PK/KEK/db)",
    ),
    ("dhcp", "nekos-stboot: dhcp::parse_reply, Reply::prefix_len"),
    (
        "url",
        "nekos-stboot: url::Url::parse and join (os_pkg_url of a descriptor, Location headers)",
    ),
    (
        "http",
        "nekos-stboot: fetch::get over loopback TCP against raw mutated HTTP responses (ureq's response path)",
    ),
];

/// The workspace: `NEKOS_WORKSPACE` if set, else the parent of this crate.
pub fn workspace() -> PathBuf {
    std::env::var_os("NEKOS_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let here = Path::new(env!("CARGO_MANIFEST_DIR"));
            here.parent().unwrap_or(here).to_path_buf()
        })
}

/// Builds the named target (seeds and any context it needs).
pub fn build(name: &str, ws: &Path) -> Result<Target, String> {
    match name {
        "snp-report" => snp_report(ws),
        "snp-certtable" => snp_certtable(ws),
        "snp-certs" => snp_certs(ws),
        "ospkg-descriptor" => ospkg_descriptor(ws),
        "ospkg-zip" => ospkg_zip(ws),
        "pe" => pe(ws),
        "uki" => uki(ws),
        "varstore-raw" => varstore_raw(ws),
        "varstore-cert" => varstore_cert(ws),
        "dhcp" => Ok(dhcp()),
        "url" => Ok(url()),
        "http" => http(ws),
        other => Err(format!(
            "unknown parser {other:?}; expected one of: {}",
            TARGETS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

const MS: Duration = Duration::from_millis(1);
/// Per input; the parsers take microseconds to a few milliseconds (tens for the
/// largest artifacts), so this leaves room for a loaded machine.
const HANG: Duration = Duration::from_secs(5);

fn about(name: &str) -> &'static str {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, a)| a)
}

fn target(
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    parse: impl Fn(&[u8]) -> String + Send + Sync + 'static,
) -> Target {
    Target {
        name,
        about: about(name),
        seeds,
        parse: Arc::new(parse),
        hang_limit: HANG,
    }
}

/// A repository fixture (must exist).
fn fixture(ws: &Path, rel: &str) -> Result<Vec<u8>, String> {
    let p = ws.join(rel);
    std::fs::read(&p).map_err(|e| format!("fixture {}: {e}", p.display()))
}

/// Built artifacts: whichever of these exist.
fn artifacts(ws: &Path, rels: &[&str]) -> Vec<Vec<u8>> {
    rels.iter()
        .filter_map(|r| std::fs::read(ws.join("target/nekos").join(r)).ok())
        .collect()
}

fn res<T, E: std::fmt::Display>(r: Result<T, E>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("err {e}"),
    }
}

// --- snpcheck ---------------------------------------------------------------

const SNP: &str = "snpcheck/tests/fixtures";

fn milan_certs(ws: &Path) -> Result<snpcheck::certs::CertSet, String> {
    let mut set = snpcheck::certs::CertSet::default();
    set.add_file(
        &fixture(ws, &format!("{SNP}/virtee-sev/cert_chain_milan"))?,
        None,
        "cert_chain_milan",
    )?;
    set.add_file(
        &fixture(ws, &format!("{SNP}/virtee-sev/vcek_milan.der"))?,
        None,
        "vcek_milan.der",
    )?;
    Ok(set)
}

fn snp_report(ws: &Path) -> Result<Target, String> {
    use snpcheck::report::from_file_bytes;
    use snpcheck::verify::{Expect, verify};
    let certs = milan_certs(ws)?;
    let seeds = vec![
        fixture(ws, &format!("{SNP}/virtee-sev/report_milan.hex"))?,
        fixture(
            ws,
            &format!("{SNP}/ms-tav-milan/milan_attestation_report.bin"),
        )?,
        fixture(ws, &format!("{SNP}/go-sev-guest/attestation.bin"))?,
    ];
    Ok(target(
        "snp-report",
        seeds,
        move |b| match from_file_bytes(b) {
            Err(e) => format!("err {e}"),
            Ok(r) => {
                let product = r.product();
                let json = r.to_json(product).render();
                let o = verify(&r, &certs, &Expect::default());
                format!(
                    "ok verified={} signer={:?} json={}",
                    o.verified(),
                    o.signer,
                    json.len().min(1)
                )
            }
        },
    ))
}

fn der_certs(ws: &Path) -> Result<Vec<(snpcheck::certs::Role, Vec<u8>)>, String> {
    use snpcheck::certs::{der_of, load, role_from_cn};
    let mut out = Vec::new();
    for f in [
        "virtee-sev/cert_chain_milan",
        "virtee-sev/vcek_milan.der",
        "ms-tav-milan/milan_vcek.pem",
    ] {
        for c in load(&fixture(ws, &format!("{SNP}/{f}"))?)? {
            if let Some(role) = role_from_cn(&c) {
                out.push((role, der_of(&c)));
            }
        }
    }
    Ok(out)
}

fn snp_certtable(ws: &Path) -> Result<Target, String> {
    use snpcheck::certs::{CertSet, Role, signs};
    use snpcheck::certtable::{self, GUID_ARK, GUID_ASK, GUID_VCEK, GUID_VLEK, guid_bytes};
    let guid = |s: &str| guid_bytes(s).ok_or_else(|| format!("bad GUID {s}"));
    let certs = der_certs(ws)?;
    let mut entries: Vec<([u8; 16], &[u8])> = Vec::new();
    for (role, der) in &certs {
        let g = match role {
            Role::Ark => guid(GUID_ARK)?,
            Role::Ask => guid(GUID_ASK)?,
            Role::Vcek => guid(GUID_VCEK)?,
            Role::Vlek | Role::Asvk => guid(GUID_VLEK)?,
        };
        entries.push((g, der.as_slice()));
    }
    let mut seeds = vec![certtable::build(&entries)];
    if let Some(first) = entries.first() {
        seeds.push(certtable::build(&[*first]));
    }
    seeds.push(fixture(ws, &format!("{SNP}/virtee-sev/cert_chain_turin"))?);
    Ok(target("snp-certtable", seeds, move |b| {
        let n = match certtable::parse(b) {
            Ok(e) => e.len(),
            Err(e) => return format!("err {e}"),
        };
        let mut set = CertSet::default();
        if let Err(e) = set.add_file(b, None, "table") {
            return format!("err {n} entries: {e}");
        }
        let chain = match (&set.ark, &set.ask, &set.vcek) {
            (Some(ark), Some(ask), Some(vcek)) => {
                format!("{} {}", res(signs(ark, ask)), res(signs(ask, vcek)))
            }
            _ => "partial".to_string(),
        };
        format!("ok {n} entries, chain {chain}")
    }))
}

fn snp_certs(ws: &Path) -> Result<Target, String> {
    use snpcheck::certs::{
        der_string, der_uint, extension, hwid_bytes, issuer_cn, load, product_of, public_key,
        role_from_cn, signs, subject_cn,
    };
    let ask = load(&fixture(ws, &format!("{SNP}/virtee-sev/cert_chain_milan"))?)?
        .into_iter()
        .find(|c| role_from_cn(c) == Some(snpcheck::certs::Role::Ask))
        .ok_or("cert_chain_milan has no ASK")?;
    let mut seeds = Vec::new();
    for f in [
        "virtee-sev/vcek_milan.der",
        "virtee-sev/vcek_turin.der",
        "virtee-sev/cert_chain_milan",
        "virtee-sev/cert_chain_turin",
        "ms-tav-milan/milan_vcek.pem",
        "ms-tav-milan/milan_ark.pem",
        "ms-tav-milan/milan_ask.pem",
        "go-sev-guest/vcek.testcer",
        "go-sev-guest/ask_ark_genoa.pem",
    ] {
        seeds.push(fixture(ws, &format!("{SNP}/{f}"))?);
    }
    // The VCEK's TCB and hwid extensions (AMD's OIDs under 1.3.6.1.4.1.3704.1).
    const OIDS: [&str; 7] = [
        "1.3.6.1.4.1.3704.1.3.1",
        "1.3.6.1.4.1.3704.1.3.2",
        "1.3.6.1.4.1.3704.1.3.3",
        "1.3.6.1.4.1.3704.1.3.8",
        "1.3.6.1.4.1.3704.1.4",
        "1.3.6.1.4.1.3704.1.2",
        "1.3.6.1.4.1.3704.1.1",
    ];
    Ok(target("snp-certs", seeds, move |b| {
        let certs = match load(b) {
            Ok(c) => c,
            Err(e) => return format!("err {e}"),
        };
        let mut out = format!("ok {}", certs.len());
        for c in &certs {
            let _ = (subject_cn(c), issuer_cn(c), public_key(c).len());
            out.push_str(&format!(" {:?}/{:?}", role_from_cn(c), product_of(c)));
            for oid in OIDS {
                if let Some(v) = extension(c, oid) {
                    let _ = (der_uint(&v), der_string(&v), hwid_bytes(&v));
                }
            }
            out.push_str(if signs(&ask, c).is_ok() {
                " signed"
            } else {
                ""
            });
        }
        out
    }))
}

// --- nekos-ospkg ------------------------------------------------------------

/// 2030-01-01T00:00:00Z: "now" for certificate validity.
const Y2030: i64 = 1_893_456_000;
const Y2020: i64 = 1_577_836_800;
const Y2040: i64 = 2_208_988_800;

/// A deterministic byte source for certgen (fixtures only; never real keys).
fn det_bytes(seed: u64) -> impl FnMut(&mut [u8]) -> Result<(), String> {
    let mut rng = crate::rng::Rng::new(seed);
    move |buf: &mut [u8]| {
        for b in buf.iter_mut() {
            *b = rng.byte();
        }
        Ok(())
    }
}

struct Package {
    zip: Vec<u8>,
    descriptor: Vec<u8>,
    root_pem: Vec<u8>,
}

/// A small signed OS package (two signers), as stboot would fetch one.
fn small_package() -> Result<Package, String> {
    use nekos_ospkg::{Descriptor, Manifest, OsPackageArchive, generate_leaf, generate_root};
    let (root_key, root_pem) =
        generate_root(Y2020, Y2040, &mut det_bytes(1)).map_err(|e| e.to_string())?;
    let kernel: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let initramfs: Vec<u8> = (0..2000u32).map(|i| (i * 13 % 241) as u8).collect();
    let manifest = Manifest::new("NekOS fuzz", "", "", "console=ttyS0 quiet");
    let zip = OsPackageArchive::build("kernel", &kernel, "initramfs.cpio", &initramfs, &manifest)
        .map_err(|e| e.to_string())?;
    let mut d = Descriptor::new("http://10.0.2.2:8000/nekos.zip");
    for seed in [2, 3] {
        let (k, c) = generate_leaf(&root_key, &root_pem, Y2020, Y2040, &mut det_bytes(seed))
            .map_err(|e| e.to_string())?;
        nekos_ospkg::sign_descriptor(&mut d, &zip, &k, &c).map_err(|e| e.to_string())?;
    }
    Ok(Package {
        zip,
        descriptor: d.to_json_bytes(),
        root_pem,
    })
}

fn ospkg_descriptor(ws: &Path) -> Result<Target, String> {
    use nekos_ospkg::{Limits, TrustPolicy, verify_package};
    let pkg = small_package()?;
    let policy = TrustPolicy::from_json(
        br#"{"ospkg_signature_threshold":2,"ospkg_fetch_method":"network"}"#,
    )
    .map_err(|e| e.to_string())?;
    let mut seeds = vec![pkg.descriptor.clone()];
    for f in ["go-desc0.json", "go-desc1.json", "go-desc2.json"] {
        seeds.push(fixture(ws, &format!("ospkg/tests/fixtures/{f}"))?);
    }
    seeds.extend(artifacts(ws, &["ospkg/nekos.json"]));
    Ok(target(
        "ospkg-descriptor",
        seeds,
        move |b| match verify_package(
            b,
            &pkg.zip,
            &policy,
            &pkg.root_pem,
            Y2030,
            Limits::default(),
        ) {
            Ok(p) => format!("ok {}", p.manifest.label.len().min(1)),
            Err(e) => format!("err {e}"),
        },
    ))
}

fn ospkg_zip(ws: &Path) -> Result<Target, String> {
    use nekos_ospkg::{Limits, OsPackageArchive};
    let pkg = small_package()?;
    let mut seeds = vec![
        pkg.zip,
        fixture(ws, "ospkg/tests/fixtures/go-archive-zip.zip")?,
    ];
    seeds.extend(artifacts(ws, &["ospkg/nekos.zip"]));
    Ok(target("ospkg-zip", seeds, move |b| {
        let names = OsPackageArchive::entry_names(b, Limits::default());
        match OsPackageArchive::parse(b, Limits::default()) {
            Ok(p) => format!("ok {} {}", p.kernel.len().min(1), res(names)),
            Err(e) => format!("err {e}"),
        }
    }))
}

// --- nekos-formats ----------------------------------------------------------

const BIG_UKIS: [&str; 4] = [
    "stboot/uki/nekos.signed.efi",
    "stboot/uki/nekos.efi",
    "production/uki/nekos.signed.efi",
    "test/uki/nekos.signed.efi",
];

struct Images {
    /// Small PE images: plain, with .sbat, signed, and a signed UKI.
    small: Vec<Vec<u8>>,
    db_cert_der: Vec<u8>,
}

/// Small images made here: a synthetic EFI application and a UKI from synthetic
/// stub and kernel, each also signed by a test db key (derived from a fixed seed).
fn images() -> Result<Images, String> {
    use nekos_formats::{authenticode, keys, pe::synthetic_efi_image, uki};
    let h = keys::generate_hierarchy(Some(b"nekos-fuzz seeds")).map_err(|e| format!("{e:#}"))?;
    let db = h
        .get(keys::Role::Db)
        .ok_or("the test hierarchy has no db key")?;
    let signer = keys::KeySigner::from_keypair(db).map_err(|e| format!("{e:#}"))?;
    let plain = synthetic_efi_image(600, true, None);
    let sbat = synthetic_efi_image(
        1500,
        false,
        Some("sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"),
    );
    let linux = synthetic_efi_image(2000, true, None);
    let mut small = vec![plain.clone(), sbat.clone()];
    let sign = |img: &[u8]| authenticode::sign(img, &signer).map_err(|e| format!("{e:#}"));
    small.push(sign(&plain)?);
    // build_uki needs a real systemd-stub (it checks .sdmagic): the pinned one from
    // the build's download cache when it is there.
    let Some(stub) = cached_stub() else {
        return Ok(Images {
            small,
            db_cert_der: db.cert_der.clone(),
        });
    };
    let built = uki::build_uki(&uki::UkiInputs {
        stub: &stub,
        linux: &linux,
        initrd: b"070701 initrd for the fuzzer",
        cmdline: "console=ttyS0 quiet",
        osrel: "NAME=NekOS\nID=nekos\n",
        uname: Some("6.12.0-nekos"),
        sbat: None,
    });
    let u = built.map_err(|e| format!("a small UKI for the seeds: {e:#}"))?;
    small.push(sign(&u)?);
    small.push(u);
    Ok(Images {
        small,
        db_cert_der: db.cert_der.clone(),
    })
}

/// systemd-stub from `~/.cache/nekos/deb-*/` (the pinned systemd-boot-efi package
/// the UKI build unpacks there), if any.
fn cached_stub() -> Option<Vec<u8>> {
    let cache = PathBuf::from(std::env::var_os("HOME")?).join(".cache/nekos");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("deb-"))
        })
        .collect();
    debs.sort();
    debs.iter()
        .find_map(|d| std::fs::read(d.join("usr/lib/systemd/boot/efi/linuxx64.efi.stub")).ok())
}

fn pe(ws: &Path) -> Result<Target, String> {
    use nekos_formats::{authenticode, pe::PeFile};
    let mut seeds = images()?.small;
    seeds.extend(artifacts(ws, &BIG_UKIS));
    Ok(target("pe", seeds, move |b| {
        let pe = match PeFile::parse(b) {
            Ok(p) => p,
            Err(e) => return format!("err {e:#}"),
        };
        let mut out = format!("ok {} sections", pe.sections.len().min(9));
        for s in &pe.sections {
            let _ = (s.name_str(), s.raw_data(b).len(), s.content(b).len());
        }
        let _ = (pe.sdmagic(b), pe.section(".linux").is_some());
        let _ = authenticode::pe_checksum(b, pe.checksum_offset());
        out.push_str(&format!(
            " table {} signed {} hash {} sig {}",
            res(pe.certificate_table(b)),
            res(pe.is_signed(b)),
            res(authenticode::authenticode_sha256(b)),
            res(authenticode::extract_signature(b))
        ));
        out
    }))
}

fn uki(ws: &Path) -> Result<Target, String> {
    use nekos_formats::{authenticode, uki};
    let img = images()?;
    let mut seeds = img.small;
    seeds.extend(artifacts(ws, &BIG_UKIS));
    let db = img.db_cert_der;
    Ok(target("uki", seeds, move |b| {
        let inspected = match uki::inspect(b) {
            Ok(i) => format!(
                "ok signed={} verifies={:?} uki={}",
                i.signed,
                i.signature_verifies,
                i.pcr11_sha256.is_some()
            ),
            Err(e) => return format!("err {e:#}"),
        };
        format!(
            "{inspected} pcr11 {} verify {} db {}",
            res(uki::predict_pcr11(b)),
            res(authenticode::verify(b, None)),
            res(authenticode::verify(b, Some(&db)))
        )
    }))
}

fn varstore_raw(ws: &Path) -> Result<Target, String> {
    use nekos_formats::varstore::{blank_template, parse_raw, parse_template};
    let mut seeds = vec![blank_template()];
    seeds.extend(artifacts(
        ws,
        &[
            "varstores/custom.fd",
            "varstores/microsoft.fd",
            "varstores/blank.fd",
        ],
    ));
    Ok(target("varstore-raw", seeds, move |b| {
        let t = res(parse_template(b));
        match parse_raw(b) {
            Ok(v) => format!("ok {} variables, template {t}", v.len()),
            Err(e) => format!("err {e:#}, template {t}"),
        }
    }))
}

fn varstore_cert(ws: &Path) -> Result<Target, String> {
    use nekos_formats::{keys, varstore::Cert};
    let h = keys::generate_hierarchy(Some(b"nekos-fuzz seeds")).map_err(|e| format!("{e:#}"))?;
    let mut seeds = vec![fixture(
        ws,
        "packaging/tests/fixtures/varstore/ec-p256.crt",
    )?];
    for kp in &h.keys {
        seeds.push(kp.cert_der.clone());
        seeds.push(
            keys::cert_pem(&kp.cert_der)
                .map_err(|e| format!("{e:#}"))?
                .into_bytes(),
        );
    }
    // Debian's certificate files: `openssl x509 -text` output before the PEM block.
    if let Some(pem) = seeds.last() {
        let mut text = b"Certificate:\n    Data:\n        Version: 3 (0x2)\n".to_vec();
        text.extend_from_slice(pem);
        seeds.push(text);
    }
    Ok(target("varstore-cert", seeds, move |b| {
        match Cert::parse(b, "fuzz input") {
            Ok(c) => format!("ok {}", c.not_before.to_bytes().len()),
            Err(e) => format!("err {e:#}"),
        }
    }))
}

// --- stage 1 (nekos-stboot) -------------------------------------------------

const XID: u32 = 0x1234_5678;
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// A reply as QEMU's slirp sends one, with `options` after the magic cookie.
fn dhcp_reply(options: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 236];
    m[0] = 2;
    m[1] = 1;
    m[2] = 6;
    m[4..8].copy_from_slice(&XID.to_be_bytes());
    m[16..20].copy_from_slice(&[10, 0, 2, 15]);
    m[20..24].copy_from_slice(&[10, 0, 2, 2]);
    m[28..34].copy_from_slice(&MAC);
    m.extend_from_slice(&[99, 130, 83, 99]);
    m.extend_from_slice(options);
    m.resize(m.len().max(300), 0);
    m
}

fn dhcp() -> Target {
    use nekos_stboot::dhcp::{self, parse_reply};
    let common: &[u8] = &[
        54, 4, 10, 0, 2, 2, 1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 2, 6, 8, 10, 0, 2, 3, 1, 1, 1,
        1, 51, 4, 0, 1, 81, 128, 0, 0,
    ];
    let mut seeds = Vec::new();
    for kind in [dhcp::OFFER, dhcp::ACK] {
        let mut o = vec![53, 1, kind];
        o.extend_from_slice(common);
        o.push(255);
        seeds.push(dhcp_reply(&o));
    }
    seeds.push(dhcp_reply(&[53, 1, dhcp::NAK, 255]));
    // Options in another order, an unknown option, a /20 mask, no END.
    seeds.push(dhcp_reply(&[
        1,
        4,
        255,
        255,
        240,
        0,
        12,
        5,
        b'n',
        b'e',
        b'k',
        b'o',
        b's',
        53,
        1,
        dhcp::OFFER,
        3,
        8,
        10,
        0,
        2,
        2,
        10,
        0,
        2,
        1,
    ]));
    Target {
        hang_limit: HANG,
        ..target("dhcp", seeds, |b| match parse_reply(b, XID, MAC) {
            Ok(r) => format!(
                "ok type {} /{} routers {} dns {}",
                r.msg_type,
                r.prefix_len(),
                r.routers.len().min(3),
                r.dns.len().min(3)
            ),
            Err(e) => format!("err {e}"),
        })
    }
}

fn url() -> Target {
    use nekos_stboot::url::Url;
    let seeds: Vec<Vec<u8>> = [
        "https://10.0.2.2:8443/ospkg/nekos.json\nnekos.zip",
        "http://10.0.2.2:8000/nekos.json\n/other/nekos.zip",
        "https://[fe80::1]:443/a/b/c.json?x=1\n../../d.zip",
        "HTTPS://example.org/\nhttp://example.org:80/x",
        "http://host/a/b\n//other.host/c?d#e",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    target("url", seeds, |b| {
        let text = String::from_utf8_lossy(b);
        let (base, reference) = text.split_once('\n').unwrap_or((&text, ""));
        match Url::parse(base) {
            Err(e) => format!("err {e}"),
            Ok(u) => {
                let _ = (u.to_string(), u.host_header());
                match u.join(reference) {
                    Ok(j) => format!("ok {:?} {}", j.scheme, j.to_string().len().min(1)),
                    Err(e) => format!("ok base, join err {e}"),
                }
            }
        }
    })
}

/// Serves the current response to every connection on a loopback port: reads the
/// request head, writes the bytes, closes.
struct Server {
    port: u16,
    response: Arc<Mutex<Arc<Vec<u8>>>>,
}

impl Server {
    fn start() -> Result<Server, String> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("local address: {e}"))?
            .port();
        let response: Arc<Mutex<Arc<Vec<u8>>>> = Arc::default();
        let current = Arc::clone(&response);
        std::thread::Builder::new()
            .name("fuzz-http-server".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let body = current.lock().map(|r| Arc::clone(&r)).unwrap_or_default();
                    serve(conn, &body);
                }
            })
            .map_err(|e| format!("cannot start the HTTP server thread: {e}"))?;
        Ok(Server { port, response })
    }
}

fn serve(mut conn: TcpStream, response: &[u8]) {
    let _ = conn.set_read_timeout(Some(500 * MS));
    let _ = conn.set_write_timeout(Some(500 * MS));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
    let _ = conn.write_all(response);
    let _ = conn.shutdown(Shutdown::Write);
}

fn http(ws: &Path) -> Result<Target, String> {
    use nekos_stboot::fetch::{self, Limits};
    use nekos_stboot::url::Url;
    let server = Server::start()?;
    // Plain http:// (as stboot allows): the TLS settings are built but not used, so
    // any root certificate will do.
    let tls = fetch::tls_config(&fixture(ws, &format!("{SNP}/ms-tav-milan/milan_ark.pem"))?)?;
    let url = Url::parse(&format!("http://127.0.0.1:{}/nekos.json", server.port))?;
    // Short timeouts: a response that stops early ends the GET within a second or
    // two, well inside the hang limit.
    let limits = Limits {
        connect_timeout: Duration::from_secs(1),
        io_timeout: Duration::from_secs(1),
        deadline: Duration::from_secs(3),
        max_bytes: 1 << 20,
        max_redirects: 5,
    };
    let descriptor = small_package()?.descriptor;
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let with_body = |head: &str, body: &[u8]| {
        let mut v = head.as_bytes().to_vec();
        v.extend_from_slice(body);
        v
    };
    seeds.push(with_body(
        &format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            descriptor.len()
        ),
        &descriptor,
    ));
    seeds.push(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
            .to_vec(),
    );
    let gz = gzip_stored(b"{\"version\":1,\"os_pkg_url\":\"nekos.zip\"}");
    seeds.push(with_body(
        &format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        ),
        &gz,
    ));
    seeds.push(
        b"HTTP/1.1 302 Found\r\nLocation: /next/nekos.json\r\nContent-Length: 0\r\n\r\n".to_vec(),
    );
    seeds.push(b"HTTP/1.1 301 Moved\r\nLocation: nekos.json\r\n\r\n".to_vec());
    seeds.push(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_vec());
    seeds.push(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
    );
    seeds.push(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until the connection closes".to_vec());
    seeds.push(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{}".to_vec());
    let response = Arc::clone(&server.response);
    let parse = move |b: &[u8]| {
        if let Ok(mut r) = response.lock() {
            *r = Arc::new(b.to_vec());
        }
        match fetch::get(&url, &tls, &limits) {
            Ok((u, body)) => format!("ok {} {}", u.path.len().min(1), body.len().min(1)),
            Err(e) => format!("err {e}"),
        }
    };
    Ok(Target {
        // Above the GET's own deadline (3 s) with room for a loaded machine.
        hang_limit: Duration::from_secs(10),
        ..target("http", seeds, parse)
    })
}

/// A gzip member holding `data` in one stored deflate block (no compressor needed).
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut v = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let len = data.len() as u16;
    v.push(1);
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&(!len).to_le_bytes());
    v.extend_from_slice(data);
    v.extend_from_slice(&nekos_ospkg::crc32(data).to_le_bytes());
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v
}
