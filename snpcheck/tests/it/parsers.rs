use crate::common::*;
use proptest::prelude::*;
use snpcheck::certs::{self, CertSet};
use snpcheck::certtable;
use snpcheck::report::{self, REPORT_LEN, Report};
use snpcheck::verify::{self, Expect};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn cert_table_parser_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(entries) = certtable::parse(&buf) {
            for e in entries {
                prop_assert!(e.data.len() <= buf.len());
            }
        }
    }

    #[test]
    fn cert_table_with_valid_header_and_random_offsets(
        entries in proptest::collection::vec((0u8..6, any::<u32>(), any::<u32>()), 0..5),
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let guids = [certtable::GUID_VCEK, certtable::GUID_ASK, certtable::GUID_ARK, certtable::GUID_VLEK];
        let mut buf = Vec::new();
        for (g, off, len) in &entries {
            let guid = guids.get(usize::from(*g)).and_then(|s| certtable::guid_bytes(s)).unwrap_or([*g; 16]);
            buf.extend_from_slice(&guid);
            buf.extend_from_slice(&(off % 400).to_le_bytes());
            buf.extend_from_slice(&(len % 400).to_le_bytes());
        }
        buf.extend_from_slice(&[0u8; 24]);
        buf.extend_from_slice(&tail);
        let _ = certtable::parse(&buf);
        // Full path: classify and load certificates out of it.
        let mut s = CertSet::default();
        let _ = s.add_file(&buf, None, "prop");
    }

    #[test]
    fn report_parser_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..1300)) {
        let _ = Report::parse(&buf);
        let _ = report::from_file_bytes(&buf);
    }

}

proptest! {
    // Each case runs a (debug-build, slow) P-384 verification.
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_1184_bytes_show_and_verify_without_panic(mut buf in proptest::collection::vec(any::<u8>(), REPORT_LEN), v in 2u32..=5) {
        buf[0..4].copy_from_slice(&v.to_le_bytes());
        let r = Report::parse(&buf).unwrap();
        let _ = r.to_json(None).render();
        let mut s = CertSet::default();
        for c in certs::load(&read("virtee-sev/vcek_milan.der")).unwrap() {
            s.add(c, None, "vcek").unwrap();
        }
        let out = verify::verify(&r, &s, &Expect::default());
        prop_assert!(!out.verified());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn cert_loader_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = certs::load(&buf);
        let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
        pem.extend_from_slice(&buf);
        let _ = certs::load(&pem);
    }

    #[test]
    fn mutated_real_table_never_panics(i in 0usize..4096, b in any::<u8>()) {
        let mut t = real_table();
        let n = t.len();
        t[i % n] = b;
        let _ = certtable::parse(&t);
        let mut s = CertSet::default();
        let _ = s.add_file(&t, None, "mutated");
    }
}

fn real_table() -> Vec<u8> {
    let vcek = read("virtee-sev/vcek_milan.der");
    let chain = read("virtee-sev/cert_chain_milan");
    let g = |s| certtable::guid_bytes(s).unwrap();
    certtable::build(&[
        (g(certtable::GUID_VCEK), &vcek),
        (g(certtable::GUID_ASK), &chain),
    ])
}

#[test]
fn lenient_versions() {
    let base = report_bytes("virtee-sev/report_milan.hex");
    // v2 with a masked chip id
    let mut b = base.clone();
    b[0x1A0..0x1E0].fill(0);
    let r = Report::parse(&b).unwrap();
    assert!(r.chip_id_masked());
    // v5 with mitigation vectors
    let mut b = base.clone();
    b[0..4].copy_from_slice(&5u32.to_le_bytes());
    b[0x1F8] = 3;
    let r = Report::parse(&b).unwrap();
    let j = r.to_json(None).render();
    assert!(j.contains("\"launch_mit_vector\":3"), "{j}");
    // unknown versions
    for v in [0u32, 1, 6, 0xffff_ffff] {
        let mut b = base.clone();
        b[0..4].copy_from_slice(&v.to_le_bytes());
        assert_eq!(Report::parse(&b), Err(report::ReportError::Version(v)));
    }
    assert_eq!(
        Report::parse(&base[..100]),
        Err(report::ReportError::Size(100))
    );
}

#[test]
fn masked_chip_id_skips_hwid() {
    let mut b = report_bytes("virtee-sev/report_milan.hex");
    b[0x1A0..0x1E0].fill(0);
    let r = Report::parse(&b).unwrap();
    let mut s = CertSet::default();
    for c in certs::load(&read("virtee-sev/vcek_milan.der")).unwrap() {
        s.add(c, None, "vcek").unwrap();
    }
    let out = verify::verify(&r, &s, &Expect::default());
    assert_eq!(
        out.status_of("VCEK hwID = CHIP_ID"),
        Some(verify::Status::Skip)
    );
    assert_eq!(
        out.status_of("report signature"),
        Some(verify::Status::Fail)
    );
}
