use crate::common::*;
use snpcheck::certs::{self, CertSet, Role};
use snpcheck::report::{Product, Report, SIGNED_LEN};
use snpcheck::verify::{self, Expect, Status};

fn set_with_vcek(vcek: &str) -> CertSet {
    let mut s = CertSet::default();
    for c in certs::load(&read(vcek)).unwrap() {
        s.add(c, Some(Role::Vcek), vcek).unwrap();
    }
    s
}

#[test]
fn all_three_real_reports_verify() {
    for (rep, vcek) in REAL {
        let r = Report::parse(&report_bytes(rep)).unwrap();
        let out = verify::verify(&r, &set_with_vcek(vcek), &Expect::default());
        assert!(out.verified(), "{rep}: {:#?}", out.failed());
        assert_eq!(out.product, Some(Product::Milan));
        for n in [
            "report signature",
            "endorsement key chain",
            "ASK chain",
            "VCEK hwID = CHIP_ID",
        ] {
            assert_eq!(out.status_of(n), Some(Status::Pass), "{rep} {n}");
        }
    }
}

#[test]
fn go_sev_guest_report_fails_forbid_debug() {
    let (rep, vcek) = REAL[1];
    let r = Report::parse(&report_bytes(rep)).unwrap();
    let exp = Expect {
        forbid_debug: true,
        ..Expect::default()
    };
    let out = verify::verify(&r, &set_with_vcek(vcek), &exp);
    assert!(!out.verified());
    assert_eq!(out.status_of("policy: debug"), Some(Status::Fail));
    // The other two forbid debug and still verify.
    for (rep, vcek) in [REAL[0], REAL[2]] {
        let r = Report::parse(&report_bytes(rep)).unwrap();
        assert!(
            verify::verify(&r, &set_with_vcek(vcek), &exp).verified(),
            "{rep}"
        );
    }
}

#[test]
fn every_single_byte_flip_in_the_signed_region_fails() {
    // Exhaustive for all three reports (the crypto crates are optimised in test builds, see
    // the root Cargo.toml).
    for (rep, vcek) in REAL {
        let bytes = report_bytes(rep);
        let vc = certs::load(&read(vcek)).unwrap().remove(0);
        let key = certs::public_key(&vc).to_vec();
        assert!(verify::verify_signature(&Report::parse(&bytes).unwrap(), &key).is_ok());
        for i in 0..SIGNED_LEN {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            // Flipping the version byte can make the report unparsable: that is a failure too.
            let Ok(r) = Report::parse(&b) else { continue };
            assert!(
                verify::verify_signature(&r, &key).is_err(),
                "{rep}: flip at {i:#x} still verifies"
            );
        }
    }
}

#[test]
fn byte_flip_fails_full_verification() {
    // A few positions through the full pipeline (the exhaustive loop above uses the raw check).
    let (rep, vcek) = REAL[0];
    let bytes = report_bytes(rep);
    for i in [0x4usize, 0x50, 0x90, 0xC0, 0x180, 0x1A0, 0x29F] {
        let mut b = bytes.clone();
        b[i] ^= 0x80;
        let r = Report::parse(&b).unwrap();
        let out = verify::verify(&r, &set_with_vcek(vcek), &Expect::default());
        assert!(!out.verified(), "flip at {i:#x}");
        assert_eq!(out.status_of("report signature"), Some(Status::Fail));
    }
    // Bytes outside the signed region (the signature itself) also break it.
    let mut b = bytes.clone();
    b[0x2A0] ^= 1;
    let out = verify::verify(
        &Report::parse(&b).unwrap(),
        &set_with_vcek(vcek),
        &Expect::default(),
    );
    assert_eq!(out.status_of("report signature"), Some(Status::Fail));
}

#[test]
fn wrong_vcek_fails() {
    let r = Report::parse(&report_bytes(REAL[0].0)).unwrap();
    let out = verify::verify(&r, &set_with_vcek(REAL[2].1), &Expect::default());
    assert!(!out.verified());
    assert_eq!(out.status_of("report signature"), Some(Status::Fail));
    assert_eq!(out.status_of("VCEK hwID = CHIP_ID"), Some(Status::Fail));
    // The Turin VCEK: wrong product chain for a Milan (CPUID) report, wrong key.
    let out = verify::verify(
        &r,
        &set_with_vcek("virtee-sev/vcek_turin.der"),
        &Expect::default(),
    );
    assert!(!out.verified());
    assert_eq!(out.status_of("endorsement key chain"), Some(Status::Fail));
}

#[test]
fn milan_vcek_under_genoa_chain_fails() {
    for (rep, vcek) in REAL {
        let r = Report::parse(&report_bytes(rep)).unwrap();
        let exp = Expect {
            product: Some(Product::Genoa),
            ..Expect::default()
        };
        let out = verify::verify(&r, &set_with_vcek(vcek), &exp);
        assert!(!out.verified(), "{rep}");
        assert_eq!(
            out.status_of("endorsement key chain"),
            Some(Status::Fail),
            "{rep}"
        );
    }
    // A supplied Genoa ASK with the Milan product fails the ASK chain.
    let mut s = set_with_vcek(REAL[2].1);
    for c in certs::load(&read("go-sev-guest/ask_ark_genoa.pem")).unwrap() {
        s.add(c, None, "genoa bundle").unwrap();
    }
    let r = Report::parse(&report_bytes(REAL[2].0)).unwrap();
    let out = verify::verify(
        &r,
        &s,
        &Expect {
            product: Some(Product::Milan),
            ..Expect::default()
        },
    );
    assert!(!out.verified());
    assert_eq!(out.status_of("supplied ARK"), Some(Status::Fail));
    assert_eq!(out.status_of("ASK chain"), Some(Status::Fail));
}

#[test]
fn equality_checks() {
    let (rep, vcek) = REAL[0];
    let r = Report::parse(&report_bytes(rep)).unwrap();
    let good = Expect {
        measurement: Some(r.measurement().to_vec()),
        host_data: Some(r.host_data().to_vec()),
        report_data: Some(vec![]),
        ..Expect::default()
    };
    let out = verify::verify(&r, &set_with_vcek(vcek), &good);
    assert!(out.verified(), "{:#?}", out.failed());
    for n in ["measurement", "host_data", "report_data"] {
        assert_eq!(out.status_of(n), Some(Status::Pass), "{n}");
    }
    let mut m = r.measurement().to_vec();
    m[0] ^= 1;
    let bad = Expect {
        measurement: Some(m),
        host_data: Some(vec![0; 32]),
        report_data: Some(vec![1]),
        ..Expect::default()
    };
    let out = verify::verify(&r, &set_with_vcek(vcek), &bad);
    for n in ["measurement", "host_data", "report_data"] {
        assert_eq!(out.status_of(n), Some(Status::Fail), "{n}");
    }
}

#[test]
fn no_vcek_is_not_verified() {
    let r = Report::parse(&report_bytes(REAL[0].0)).unwrap();
    let out = verify::verify(&r, &CertSet::default(), &Expect::default());
    assert!(!out.verified());
    assert_eq!(out.status_of("report signature"), Some(Status::Skip));
}

#[test]
fn virtee_measurement_prefix() {
    let r = Report::parse(&report_bytes(REAL[2].0)).unwrap();
    assert!(snpcheck::hex::encode(r.measurement()).starts_with("7a1e5c26"));
}
