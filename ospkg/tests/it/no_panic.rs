//! Property tests: no input makes the parsers or the verifier panic.

use crate::common::*;
use nekos_ospkg::*;
use proptest::prelude::*;
use std::sync::OnceLock;

struct Fixture {
    zip: Vec<u8>,
    go_zip: Vec<u8>,
    descriptor: Vec<u8>,
    root: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let pki = root(1, Y2020, Y2040);
        let (k, c) = leaf(&pki, 2, Y2020, Y2040);
        let zip = package_zip();
        let mut d = Descriptor::new("http://10.0.2.2:8000/nekos.zip");
        sign_descriptor(&mut d, &zip, &k, &c).unwrap();
        Fixture {
            zip,
            go_zip: include_bytes!("../fixtures/go-archive-zip.zip").to_vec(),
            descriptor: d.to_json_bytes(),
            root: pki.root_pem,
        }
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop_oneof![Just(0u8), Just(0xff), Just(0x7f), Just(0x80), any::<u8>()]
        )
            .prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn apply(mut data: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if data.is_empty() {
            break;
        }
        let n = data.len();
        match m {
            Mutation::Flip(i, b) => data[i % n] ^= b,
            Mutation::Set(i, b) => data[i % n] = *b,
            Mutation::Truncate(i) => data.truncate(i % n),
            Mutation::Insert(i, v) => {
                let at = i % n;
                data.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(i, k) => {
                let at = i % n;
                let end = (at + k).min(n);
                data.drain(at..end);
            }
        }
    }
    data
}

fn small_limits() -> Limits {
    Limits {
        max_archive_bytes: 1 << 20,
        max_entry_bytes: 1 << 20,
        max_total_bytes: 1 << 20,
        max_entries: 16,
        max_descriptor_bytes: 1 << 16,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = OsPackageArchive::parse(&data, small_limits());
        let _ = Descriptor::from_json(&data);
        let _ = Manifest::from_json(&data);
        let _ = TrustPolicy::from_json(&data);
        let _ = HostConfig::from_json(&data);
        let _ = signing_key_from_pem(&data);
        let _ = pem_decode_all(&data);
        let _ = describe_certificate(&data);
        let f = fixture();
        let policy = TrustPolicy { ospkg_signature_threshold: 1, ospkg_fetch_method: FetchMethod::Network };
        let _ = verify_package(&data, &f.zip, &policy, &f.root, Y2030, small_limits());
        let _ = verify_package(&f.descriptor, &data, &policy, &f.root, Y2030, small_limits());
        let _ = verify_package(&f.descriptor, &f.zip, &policy, &data, Y2030, small_limits());
    }

    #[test]
    fn mutated_archives_never_panic(muts in proptest::collection::vec(mutation(), 1..6)) {
        let f = fixture();
        let bad = apply(f.zip.clone(), &muts);
        let r = OsPackageArchive::parse(&bad, small_limits());
        if bad == f.zip {
            prop_assert!(r.is_ok());
        }
        let _ = OsPackageArchive::parse(&apply(f.go_zip.clone(), &muts), small_limits());
    }

    #[test]
    fn mutated_descriptors_never_panic(muts in proptest::collection::vec(mutation(), 1..4)) {
        let f = fixture();
        let bad = apply(f.descriptor.clone(), &muts);
        let policy = TrustPolicy { ospkg_signature_threshold: 1, ospkg_fetch_method: FetchMethod::Network };
        let r = verify_package(&bad, &f.zip, &policy, &f.root, Y2030, small_limits());
        if bad == f.descriptor {
            prop_assert!(r.is_ok());
        }
        let _ = verify_package(&f.descriptor, &f.zip, &policy, &apply(f.root.clone(), &muts), Y2030, small_limits());
    }

    #[test]
    fn json_strings_round_trip(label in any::<String>(), cmdline in any::<String>()) {
        let m = Manifest::new(&label, "boot/k", "boot/i", &cmdline);
        let bytes = m.to_json_bytes();
        prop_assert_eq!(Manifest::from_json(&bytes).unwrap(), m);
        // Never any raw < > & U+2028 U+2029 in the output.
        let s = String::from_utf8(bytes).unwrap();
        let forbidden = ['<', '>', '&', '\u{2028}', '\u{2029}'];
        prop_assert!(!s.contains(forbidden), "raw special character in {:?}", s);
    }
}
