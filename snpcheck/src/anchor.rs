//! Verification under an explicitly trusted root instead of AMD's built-in ARKs
//! (`--trust-ark FILE`): for test and lab chains, e.g. the synthetic signer's.
//!
//! `verify::verify` always anchors at the built-in ARK of the product, so this runs it for
//! every other check (signature, extensions, policy, equality) and replaces its four chain
//! checks with ones anchored at `root`. Certificate signatures may be RSA-PSS/SHA-384 (as
//! AMD signs) or ECDSA P-384/SHA-384. The smaller change, if verify.rs may take it: an
//! `Expect::trust_ark: Option<Certificate>` used in place of `certs::builtin_ark_ask`.

use crate::certs::{self, CertSet, Role};
use crate::verify::{self, Check, Expect, Outcome, Status};
use x509_cert::Certificate;
use x509_cert::der::Encode;

/// ecdsa-with-SHA384 (RFC 5758).
pub const ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";

/// The chain checks `verify::verify` anchors at the built-in ARK.
const CHAIN_CHECKS: [&str; 4] = ["ARK", "supplied ARK", "ASK chain", "endorsement key chain"];

/// Does `signer` sign `signee` (RSA-PSS SHA-384 or ECDSA P-384 SHA-384)?
pub fn signs(signer: &Certificate, signee: &Certificate) -> Result<(), String> {
    // RFC 5280 §4.1.1.2 on this path too: the outer algorithm is not covered by the signature.
    certs::check_signature_algorithm(signee)?;
    if signee.signature_algorithm.oid.to_string() != ECDSA_WITH_SHA384 {
        return certs::signs(signer, signee);
    }
    use p384::ecdsa::signature::Verifier;
    use p384::ecdsa::{Signature, VerifyingKey};
    let vk = VerifyingKey::from_sec1_bytes(certs::public_key(signer))
        .map_err(|_| "the signer's key is not a P-384 public key".to_string())?;
    let sig = Signature::from_der(signee.signature.raw_bytes())
        .map_err(|_| "the signature is not a DER ECDSA signature".to_string())?;
    let tbs = signee
        .tbs_certificate
        .to_der()
        .map_err(|e| format!("cannot encode tbsCertificate: {e}"))?;
    vk.verify(&tbs, &sig)
        .map_err(|_| "ECDSA P-384 signature does not verify".to_string())
}

fn check(name: &str, r: Result<String, String>) -> Check {
    match r {
        Ok(d) => Check {
            name: name.into(),
            status: Status::Pass,
            detail: d,
        },
        Err(d) => Check {
            name: name.into(),
            status: Status::Fail,
            detail: d,
        },
    }
}

/// All of `verify::verify`, with the chain anchored at `root` (`source` names where it came
/// from, for the messages).
pub fn verify_with_root(
    report: &crate::report::Report,
    set: &CertSet,
    exp: &Expect,
    root: &Certificate,
    source: &str,
) -> Outcome {
    let mut out = verify::verify(report, set, exp);
    let at = out
        .checks
        .iter()
        .position(|c| CHAIN_CHECKS.contains(&c.name.as_str()))
        .unwrap_or(out.checks.len());
    out.checks
        .retain(|c| !CHAIN_CHECKS.contains(&c.name.as_str()));
    let root_cn = certs::subject_cn(root);
    let mut chain = Vec::new();
    let root_ok = signs(root, root).is_ok();
    chain.push(check(
        "ARK",
        if root_ok {
            Ok(format!(
                "trusted root \"{root_cn}\" from {source}, self-signed (NOT AMD's built-in ARK)"
            ))
        } else {
            Err(format!(
                "trusted root \"{root_cn}\" from {source} is not self-signed"
            ))
        },
    ));
    if let Some(given) = &set.ark {
        chain.push(check(
            "supplied ARK",
            if certs::der_of(given) == certs::der_of(root) {
                Ok(format!("identical to the trusted root from {source}"))
            } else {
                Err(format!(
                    "supplied ARK \"{}\" is not the trusted root from {source}",
                    certs::subject_cn(given)
                ))
            },
        ));
    }
    let vlek = report.signing_key() == 1;
    let (mid, mid_name) = if vlek {
        (set.asvk.as_ref(), "ASVK")
    } else {
        (set.ask.as_ref(), "ASK")
    };
    let mut ca = None;
    match mid {
        None => chain.push(Check {
            name: "ASK chain".into(),
            status: Status::Skip,
            detail: format!(
                "no {mid_name} supplied (a trusted root needs the whole chain: --certs)"
            ),
        }),
        Some(_) if !root_ok => chain.push(Check {
            name: "ASK chain".into(),
            status: Status::Skip,
            detail: "the trusted root failed".into(),
        }),
        Some(m) => {
            let name = certs::subject_cn(m);
            let r = signs(root, m)
                .map(|_| format!("{mid_name} \"{name}\" is signed by \"{root_cn}\""))
                .map_err(|e| format!("{mid_name} \"{name}\" is not signed by \"{root_cn}\": {e}"));
            if r.is_ok() {
                ca = Some(m);
            }
            chain.push(check("ASK chain", r));
        }
    }
    let (vek, role) = if vlek {
        (set.vlek.as_ref(), Role::Vlek)
    } else {
        (set.vcek.as_ref(), Role::Vcek)
    };
    chain.push(match (vek, ca) {
        (None, _) => Check {
            name: "endorsement key chain".into(),
            status: Status::Skip,
            detail: "no VCEK/VLEK certificate".into(),
        },
        (Some(_), None) => Check {
            name: "endorsement key chain".into(),
            status: Status::Skip,
            detail: format!("no verified {mid_name}"),
        },
        (Some(v), Some(a)) => {
            let an = certs::subject_cn(a);
            check(
                "endorsement key chain",
                signs(a, v)
                    .map(|_| format!("{} is signed by \"{an}\"", role.name()))
                    .map_err(|e| format!("{} is not signed by \"{an}\": {e}", role.name())),
            )
        }
    });
    let at = at.min(out.checks.len());
    out.checks.splice(at..at, chain);
    out
}
