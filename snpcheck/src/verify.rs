//! Offline verification of a report: certificate chain to the built-in AMD roots, the report
//! signature over the raw signed bytes, VCEK/VLEK extensions against the report, policy and
//! equality checks. Every check ends as pass, fail or skipped with a reason.

use crate::certs::{self, CertSet, Role};
use crate::hex;
use crate::json::Json;
use crate::report::{Product, REPORT_LEN, Report, SIG_RESERVED_OFFSET, SIGNED_LEN, Tcb, policy};
use x509_cert::Certificate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

impl Check {
    pub fn to_json(&self) -> Json {
        Json::obj()
            .with("name", self.name.as_str())
            .with("status", self.status.name())
            .with("detail", self.detail.as_str())
    }
}

/// What the caller expects (all optional).
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub product: Option<Product>,
    pub forbid_debug: bool,
    pub forbid_migration_agent: bool,
    pub forbid_smt: bool,
    pub measurement: Option<Vec<u8>>,
    pub host_data: Option<Vec<u8>>,
    /// Compared zero-padded to 64 bytes.
    pub report_data: Option<Vec<u8>>,
    pub vmpl: Option<u32>,
}

/// Result of all checks.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub checks: Vec<Check>,
    pub product: Option<Product>,
    pub signer: Option<Role>,
}

/// Names of the checks that must pass for a report to count as verified.
pub const ESSENTIAL: [&str; 3] = ["ASK chain", "endorsement key chain", "report signature"];

impl Outcome {
    fn push(&mut self, name: &str, status: Status, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.to_string(),
            status,
            detail: detail.into(),
        });
    }

    fn result(&mut self, name: &str, r: Result<String, String>) -> bool {
        match r {
            Ok(d) => {
                self.push(name, Status::Pass, d);
                true
            }
            Err(d) => {
                self.push(name, Status::Fail, d);
                false
            }
        }
    }

    pub fn status_of(&self, name: &str) -> Option<Status> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.status)
    }

    /// No check failed and the chain and signature checks passed.
    pub fn verified(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Fail)
            && ESSENTIAL
                .iter()
                .all(|n| self.status_of(n) == Some(Status::Pass))
    }

    pub fn failed(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect()
    }

    pub fn to_json(&self) -> Json {
        Json::obj()
            .with("verified", self.verified())
            .with("product", self.product.map(Product::name))
            .with("signing_key", self.signer.map(Role::name))
            .with(
                "checks",
                Json::Arr(self.checks.iter().map(Check::to_json).collect()),
            )
    }
}

/// ECDSA P-384/SHA-384 over the raw signed bytes 0x000..0x2A0 with a SEC1 public key; the
/// unused high bytes of R and S and the reserved bytes after them must be zero.
pub fn verify_signature(report: &Report, sec1: &[u8]) -> Result<(), String> {
    use p384::ecdsa::signature::Verifier;
    use p384::ecdsa::{Signature, VerifyingKey};
    let vk = VerifyingKey::from_sec1_bytes(sec1)
        .map_err(|_| "endorsement key is not a P-384 public key".to_string())?;
    let (r_le, s_le) = (report.signature_r(), report.signature_s());
    if r_le.len() != 72 || s_le.len() != 72 {
        return Err("signature field truncated".into());
    }
    if r_le
        .iter()
        .skip(48)
        .chain(s_le.iter().skip(48))
        .any(|&b| b != 0)
    {
        return Err("signature R/S have non-zero bytes above 48".into());
    }
    // Unsigned, reserved, written as zeros by the firmware: refused rather than ignored, so a
    // report cannot carry data there that merely looks attested (report.rs SIG_RESERVED_OFFSET).
    if let Some((at, b)) = report.signature_reserved_nonzero() {
        return Err(format!(
            "reserved byte 0x{at:03X} after the signature is {b:#04x}: bytes \
             0x{SIG_RESERVED_OFFSET:03X}..0x{REPORT_LEN:03X} must be zero (they are not signed)"
        ));
    }
    let mut r = [0u8; 48];
    let mut s = [0u8; 48];
    for i in 0..48 {
        r[47 - i] = r_le.get(i).copied().unwrap_or(0);
        s[47 - i] = s_le.get(i).copied().unwrap_or(0);
    }
    let sig = Signature::from_scalars(r, s)
        .map_err(|_| "signature R/S are not valid P-384 scalars".to_string())?;
    vk.verify(report.signed_bytes().get(..SIGNED_LEN).unwrap_or(&[]), &sig)
        .map_err(|_| "ECDSA P-384 signature does not verify".to_string())
}

fn pad64(v: &[u8]) -> Vec<u8> {
    let mut p = v.to_vec();
    p.resize(64.max(v.len()), 0);
    p
}

/// Run every check.
pub fn verify(report: &Report, certs: &CertSet, exp: &Expect) -> Outcome {
    let mut o = Outcome::default();

    // -- report format
    o.result(
        "signature algorithm",
        if report.sig_algo() == 1 {
            Ok("1 = ECDSA P-384 with SHA-384".into())
        } else {
            Err(format!(
                "SIGNATURE_ALGO is {}, expected 1",
                report.sig_algo()
            ))
        },
    );

    // -- which key signed
    let (role, vek): (Option<Role>, Option<&Certificate>) = match report.signing_key() {
        0 => (Some(Role::Vcek), certs.vcek.as_ref()),
        1 => (Some(Role::Vlek), certs.vlek.as_ref()),
        7 => (None, None),
        n => {
            o.push(
                "signing key",
                Status::Fail,
                format!("KEY_INFO.SIGNING_KEY is reserved value {n}"),
            );
            (None, None)
        }
    };
    o.signer = role;
    if report.signing_key() == 7 {
        o.push(
            "signing key",
            Status::Fail,
            "report is not signed (KEY_INFO.SIGNING_KEY = none)",
        );
    }
    if report.mask_chip_key() {
        o.push(
            "signing key",
            Status::Fail,
            "MASK_CHIP_KEY is set: the signature is zeros",
        );
    }
    if let Some(r) = role {
        match vek {
            Some(c) => o.push(
                "signing key",
                Status::Pass,
                format!(
                    "{} (KEY_INFO) with certificate \"{}\"",
                    r.name(),
                    certs::subject_cn(c)
                ),
            ),
            None => o.push(
                "signing key",
                Status::Skip,
                format!(
                    "report is signed by a {}, none supplied (use --{} FILE or --certs)",
                    r.name(),
                    r.name().to_lowercase()
                ),
            ),
        }
        // A VCEK supplied for a VLEK-signed report (or vice versa) is a mismatch.
        let other = if r == Role::Vcek {
            &certs.vlek
        } else {
            &certs.vcek
        };
        if vek.is_none() && other.is_some() {
            o.push(
                "signing key kind",
                Status::Fail,
                format!(
                    "report is signed by a {}, but only the other kind was supplied",
                    r.name()
                ),
            );
        }
    }

    // -- product
    let from_report = report.product();
    let from_cert = vek.and_then(certs::product_of);
    let product = match (exp.product, from_report) {
        (Some(p), Some(r)) if p != r => {
            o.push(
                "product",
                Status::Fail,
                format!(
                    "--product {} but the report's CPUID says {}",
                    p.name(),
                    r.name()
                ),
            );
            Some(p)
        }
        (Some(p), _) => {
            o.push(
                "product",
                Status::Pass,
                format!("{} (from --product)", p.name()),
            );
            Some(p)
        }
        (None, Some(r)) => {
            o.push(
                "product",
                Status::Pass,
                format!("{} (from the report's CPUID fields)", r.name()),
            );
            Some(r)
        }
        (None, None) => match from_cert {
            Some(p) => {
                o.push(
                    "product",
                    Status::Pass,
                    format!(
                        "{} (from the {} certificate's issuer/product name)",
                        p.name(),
                        role.map_or("?", Role::name)
                    ),
                );
                Some(p)
            }
            None => {
                o.push("product", Status::Skip, "unknown: report has no CPUID fields (v2) and no certificate names it; pass --product");
                None
            }
        },
    };
    o.product = product;

    // -- chain
    let builtin = product.map(certs::builtin_ark_ask);
    let mut ca: Option<Certificate> = None;
    match builtin {
        None => {
            o.push("ARK", Status::Skip, "product unknown");
            o.push("ASK chain", Status::Skip, "product unknown");
        }
        Some(Err(e)) => {
            o.push("ARK", Status::Fail, e);
            o.push("ASK chain", Status::Skip, "no ARK");
        }
        Some(Ok((ark, builtin_ask))) => {
            let pname = product.map_or("?", Product::name);
            let ark_ok = o.result(
                "ARK",
                certs::signs(&ark, &ark)
                    .map(|_| format!("built-in AMD ARK-{pname}, self-signed"))
                    .map_err(|e| format!("built-in ARK: {e}")),
            );
            if let Some(given) = &certs.ark {
                o.result(
                    "supplied ARK",
                    if certs::der_of(given) == certs::der_of(&ark) {
                        Ok(format!("identical to the built-in ARK-{pname}"))
                    } else {
                        Err(format!(
                            "supplied ARK \"{}\" is not the built-in ARK-{pname}",
                            certs::subject_cn(given)
                        ))
                    },
                );
            }
            let (mid, mid_src) = if role == Some(Role::Vlek) {
                match &certs.asvk {
                    Some(c) => (Ok(c.clone()), "supplied ASVK"),
                    None => (
                        certs::builtin_asvk(product.unwrap_or(Product::Milan)),
                        "bundled ASVK",
                    ),
                }
            } else {
                match &certs.ask {
                    Some(c) => (Ok(c.clone()), "supplied ASK"),
                    None => (Ok(builtin_ask), "built-in ASK"),
                }
            };
            match mid {
                Err(e) => {
                    o.push("ASK chain", Status::Fail, e);
                }
                Ok(mid) if ark_ok => {
                    let name = certs::subject_cn(&mid);
                    // A malformed certificate is refused as such, not as "not signed".
                    let checked = certs::check_signature_algorithm(&mid).and_then(|()| {
                        certs::signs(&ark, &mid)
                            .map(|_| format!("{mid_src} \"{name}\" is signed by ARK-{pname}"))
                            .map_err(|e| {
                                format!("{mid_src} \"{name}\" is not signed by ARK-{pname}: {e}")
                            })
                    });
                    if o.result("ASK chain", checked) {
                        ca = Some(mid);
                    }
                }
                Ok(_) => o.push("ASK chain", Status::Skip, "ARK failed"),
            }
        }
    }
    let role_name = role.map_or("endorsement key", Role::name);
    match (vek, &ca) {
        (None, _) => o.push(
            "endorsement key chain",
            Status::Skip,
            "no VCEK/VLEK certificate",
        ),
        (Some(_), None) => o.push(
            "endorsement key chain",
            Status::Skip,
            "no verified ASK/ASVK",
        ),
        (Some(v), Some(ask)) => {
            let checked = certs::check_signature_algorithm(v).and_then(|()| {
                certs::signs(ask, v)
                    .map(|_| format!("{role_name} is signed by \"{}\"", certs::subject_cn(ask)))
                    .map_err(|e| {
                        format!(
                            "{role_name} is not signed by \"{}\": {e}",
                            certs::subject_cn(ask)
                        )
                    })
            });
            o.result("endorsement key chain", checked);
        }
    }

    // -- signature over the raw bytes
    match vek {
        None => o.push("report signature", Status::Skip, "no VCEK/VLEK certificate"),
        Some(v) => {
            o.result(
                "report signature",
                verify_signature(report, certs::public_key(v))
                    .map(|_| format!("ECDSA P-384/SHA-384 over bytes 0x000..0x{SIGNED_LEN:03X} verifies with the {role_name}")),
            );
        }
    }

    // -- VCEK/VLEK extensions against the report
    if let Some(v) = vek {
        let layout = product.or(from_cert).unwrap_or(Product::Milan);
        let tcb = Tcb::decode(report.reported_tcb_raw(), layout);
        let mut spl = vec![
            ("blSPL", certs::OID_BL_SPL, tcb.bootloader),
            ("teeSPL", certs::OID_TEE_SPL, tcb.tee),
            ("snpSPL", certs::OID_SNP_SPL, tcb.snp),
            ("ucodeSPL", certs::OID_UCODE_SPL, tcb.microcode),
        ];
        if let Some(f) = tcb.fmc {
            spl.insert(0, ("fmcSPL", certs::OID_FMC_SPL, f));
        }
        for (name, oid, want) in spl {
            let check = format!("{role_name} {name} = REPORTED_TCB");
            match certs::extension(v, oid) {
                None => o.push(
                    &check,
                    Status::Fail,
                    format!("{role_name} has no {name} extension ({oid})"),
                ),
                Some(val) => match certs::der_uint(&val) {
                    Some(got) if got == u64::from(want) => {
                        o.push(&check, Status::Pass, format!("{got}"));
                    }
                    Some(got) => o.push(
                        &check,
                        Status::Fail,
                        format!("certificate says {got}, REPORTED_TCB says {want}"),
                    ),
                    None => o.push(
                        &check,
                        Status::Fail,
                        format!("{name} extension is not a DER INTEGER"),
                    ),
                },
            }
        }
        if role == Some(Role::Vcek) {
            let check = "VCEK hwID = CHIP_ID";
            match certs::extension(v, certs::OID_HWID) {
                None => o.push(
                    check,
                    Status::Fail,
                    "VCEK has no hwID extension (1.3.6.1.4.1.3704.1.4)",
                ),
                Some(val) => {
                    let hw = certs::hwid_bytes(&val);
                    let chip = report.chip_id();
                    if report.chip_id_masked() {
                        o.push(
                            check,
                            Status::Skip,
                            "CHIP_ID is masked (all zero) in the report",
                        );
                    } else if hw.len() == 64 && hw == chip {
                        o.push(check, Status::Pass, "64-byte hwID matches");
                    } else if hw.len() == 8
                        && chip.get(..8) == Some(&hw[..])
                        && chip.iter().skip(8).all(|&b| b == 0)
                    {
                        o.push(check, Status::Pass, "8-byte hwID matches (Turin)");
                    } else {
                        o.push(
                            check,
                            Status::Fail,
                            format!(
                                "hwID {} differs from CHIP_ID {}",
                                hex::encode(&hw),
                                hex::encode(chip)
                            ),
                        );
                    }
                }
            }
        }
    }

    // -- policy
    let pol = report.policy();
    o.result(
        "policy reserved bit 17",
        if pol & policy::RESERVED_ONE != 0 {
            Ok("set, as the ABI requires".into())
        } else {
            Err(format!("POLICY {pol:#x} has bit 17 clear (must be 1)"))
        },
    );
    for (name, bit, forbid, flag) in [
        (
            "policy: debug",
            policy::DEBUG,
            exp.forbid_debug,
            "--forbid-debug",
        ),
        (
            "policy: migration agent",
            policy::MIGRATE_MA,
            exp.forbid_migration_agent,
            "--forbid-migration-agent",
        ),
        ("policy: SMT", policy::SMT, exp.forbid_smt, "--forbid-smt"),
    ] {
        let allowed = pol & bit != 0;
        let state = if allowed { "allowed" } else { "not allowed" };
        if !forbid {
            o.push(
                name,
                Status::Skip,
                format!("{state} by POLICY; not checked (use {flag})"),
            );
        } else if allowed {
            o.push(
                name,
                Status::Fail,
                format!("{state} by POLICY {pol:#x}, forbidden by {flag}"),
            );
        } else {
            o.push(name, Status::Pass, format!("{state} by POLICY"));
        }
    }
    if exp.forbid_smt {
        let smt_on = report.platform_info() & 1 != 0;
        o.result(
            "platform: SMT",
            if smt_on {
                Err("PLATFORM_INFO says SMT is enabled on the host".into())
            } else {
                Ok("SMT disabled on the host".into())
            },
        );
    }

    // -- equality checks
    let eq = |o: &mut Outcome, name: &str, want: &Option<Vec<u8>>, got: &[u8], pad: bool| match want
    {
        None => o.push(name, Status::Skip, "no expected value given"),
        Some(w) => {
            let w = if pad { pad64(w) } else { w.clone() };
            if w == got {
                o.push(name, Status::Pass, hex::encode(got));
            } else {
                o.push(
                    name,
                    Status::Fail,
                    format!(
                        "report has {}, expected {}",
                        hex::encode(got),
                        hex::encode(&w)
                    ),
                );
            }
        }
    };
    eq(
        &mut o,
        "measurement",
        &exp.measurement,
        report.measurement(),
        false,
    );
    eq(
        &mut o,
        "host_data",
        &exp.host_data,
        report.host_data(),
        false,
    );
    eq(
        &mut o,
        "report_data",
        &exp.report_data,
        report.report_data(),
        true,
    );
    if let Some(v) = exp.vmpl {
        o.result(
            "vmpl",
            if report.vmpl() == v {
                Ok(format!("{v}"))
            } else {
                Err(format!("report has VMPL {}, requested {v}", report.vmpl()))
            },
        );
    }
    o
}
