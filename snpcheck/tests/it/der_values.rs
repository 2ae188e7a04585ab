//! The extension value readers (`der_uint`, `der_string`, `hwid_bytes`) read DER with the
//! `der` crate. They replaced a hand-written TLV reader; that reader is kept here as the
//! oracle, and the new ones must decide exactly as it did on every input whose lengths are
//! in the minimal form DER requires (the one case `der` refuses and the old reader took).

use crate::common::*;
use proptest::prelude::*;
use snpcheck::certs;

/// The former hand-written reader: (tag, contents) for a single-byte tag and definite length.
fn old_tlv(b: &[u8]) -> Option<(u8, &[u8])> {
    let tag = *b.first()?;
    let l0 = *b.get(1)?;
    let (len, hdr) = if l0 < 0x80 {
        (usize::from(l0), 2usize)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let body = b.get(hdr..hdr.checked_add(len)?)?;
    Some((tag, body))
}

fn old_uint(b: &[u8]) -> Option<u64> {
    let (tag, body) = old_tlv(b)?;
    if tag != 0x02 || body.is_empty() || body.len() > 9 {
        return None;
    }
    if body.first().is_some_and(|&x| x & 0x80 != 0) {
        return None;
    }
    let mut v: u64 = 0;
    for &x in body {
        v = v.checked_mul(256)?.checked_add(u64::from(x))?;
    }
    Some(v)
}

fn old_string(b: &[u8]) -> Option<String> {
    let (tag, body) = old_tlv(b)?;
    matches!(tag, 0x16 | 0x0c | 0x13).then(|| String::from_utf8_lossy(body).into_owned())
}

fn old_hwid(v: &[u8]) -> Vec<u8> {
    if v.len() == 64 || v.len() == 8 {
        return v.to_vec();
    }
    match old_tlv(v) {
        Some((0x04, body)) if body.len() + 2 <= v.len() => body.to_vec(),
        _ => v.to_vec(),
    }
}

/// Whether the first TLV's length is in long form although it did not need to be (or has
/// leading zero bytes): DER forbids it, `der` refuses it, the old reader took it.
fn non_minimal_length(b: &[u8]) -> bool {
    match b.get(1) {
        Some(&l0) if l0 > 0x80 => {
            let n = usize::from(l0 & 0x7f);
            let first = b.get(2).copied().unwrap_or(0);
            first == 0 || (n == 1 && first < 0x80)
        }
        _ => false,
    }
}

/// A TLV with the given tag and body, minimal length.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = body.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend([0x81, n as u8]);
    } else {
        v.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(body);
    v
}

fn tag() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0x02u8),
        Just(0x04),
        Just(0x0c),
        Just(0x13),
        Just(0x16),
        Just(0x1f),
        Just(0x22),
        any::<u8>()
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn same_decisions_as_the_old_reader_on_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..80)) {
        prop_assume!(!non_minimal_length(&b));
        prop_assert_eq!(certs::der_uint(&b), old_uint(&b));
        prop_assert_eq!(certs::der_string(&b), old_string(&b));
        prop_assert_eq!(certs::hwid_bytes(&b), old_hwid(&b));
    }

    #[test]
    fn same_decisions_on_well_formed_elements(
        t in tag(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        leading_zeros in 0usize..3,
        tail in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut body = body;
        if t == 0x02 {
            // Integers of every size around the u64 limit, with and without leading zeros.
            body.truncate(10);
            body.splice(0..0, std::iter::repeat_n(0u8, leading_zeros));
        }
        let mut b = tlv(t, &body);
        b.extend_from_slice(&tail);
        prop_assert_eq!(certs::der_uint(&b), old_uint(&b));
        prop_assert_eq!(certs::der_string(&b), old_string(&b));
        prop_assert_eq!(certs::hwid_bytes(&b), old_hwid(&b));
    }
}

#[test]
fn edges() {
    let max = [
        0x02, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    assert_eq!(certs::der_uint(&max), Some(u64::MAX));
    let too_big = [0x02, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(certs::der_uint(&too_big), None);
    // Non-minimal integer contents were always accepted and still are.
    assert_eq!(certs::der_uint(&[0x02, 0x03, 0, 0, 7]), Some(7));
    assert_eq!(certs::der_uint(&[0x02, 0x01, 0]), Some(0));
    assert_eq!(certs::der_uint(&[0x02, 0x00]), None);
    // Trailing bytes after the element are not looked at.
    assert_eq!(certs::der_uint(&[0x02, 0x01, 5, 0xff]), Some(5));
    // The one change: a long-form length that fits the short form is not DER.
    assert_eq!(old_uint(&[0x02, 0x81, 0x01, 5]), Some(5));
    assert_eq!(certs::der_uint(&[0x02, 0x81, 0x01, 5]), None);
    // Strings whose bytes break their alphabet are still read, with replacement.
    assert_eq!(
        certs::der_string(&[0x13, 0x03, b'a', 0xff, b'*']).as_deref(),
        Some("a\u{fffd}*")
    );
}

#[test]
fn real_vcek_extensions() {
    for (_, vcek) in REAL {
        let c = certs::load(&read(vcek)).unwrap().remove(0);
        for oid in [
            certs::OID_BL_SPL,
            certs::OID_TEE_SPL,
            certs::OID_SNP_SPL,
            certs::OID_UCODE_SPL,
        ] {
            let v = certs::extension(&c, oid).unwrap();
            assert_eq!(certs::der_uint(&v), old_uint(&v), "{vcek} {oid}");
            assert!(certs::der_uint(&v).is_some(), "{vcek} {oid}");
        }
        let p = certs::extension(&c, certs::OID_PRODUCT_NAME);
        if let Some(p) = p {
            assert_eq!(certs::der_string(&p), old_string(&p), "{vcek}");
        }
        let hw = certs::extension(&c, certs::OID_HWID).unwrap();
        assert_eq!(certs::hwid_bytes(&hw), old_hwid(&hw), "{vcek}");
    }
}

#[test]
fn own_pem_splitter_reason_still_holds() {
    // Why `certs::parse_pem_all` exists: x509-cert's `load_pem_chain` underflows on empty
    // input (a panic in this overflow-checked test build) and refuses text around blocks.
    // Should an upgrade fix both, the splitter can go.
    use x509_cert::Certificate;
    let panicked = std::panic::catch_unwind(|| Certificate::load_pem_chain(b"\n")).is_err();
    assert!(panicked, "load_pem_chain no longer panics on empty input");
    assert!(certs::parse_pem_all(b"").is_err());
    assert!(certs::parse_pem_all(b"\n").is_err());
    let pem = read("go-sev-guest/ask_ark_milan.pem");
    let mut framed = b"ASK and ARK of Milan\n".to_vec();
    framed.extend_from_slice(&pem);
    framed.extend_from_slice(b"end of chain\n");
    assert!(Certificate::load_pem_chain(&framed).is_err());
    assert_eq!(certs::parse_pem_all(&framed).unwrap().len(), 2);
}
