//! The PE/Authenticode/UKI parsers never panic, whatever the bytes: random inputs and
//! mutations of valid images (synthetic PE, a signed synthetic PE).

use nekos_packaging::authenticode;
use nekos_packaging::keys::{self, KeySigner, Role};
use nekos_packaging::pe::{self, PeFile};
use nekos_packaging::uki::{self, UkiInputs};
use proptest::prelude::*;
use std::sync::OnceLock;

fn signed_sample() -> &'static Vec<u8> {
    static S: OnceLock<Vec<u8>> = OnceLock::new();
    S.get_or_init(|| {
        let h = keys::generate_hierarchy(Some(b"fuzz")).unwrap();
        let db = h.get(Role::Db).unwrap();
        let signer = KeySigner::new(db.key.clone(), db.cert_der.clone()).unwrap();
        authenticode::sign(
            &pe::synthetic_efi_image(3000, true, Some("sbat,1,x\n")),
            &signer,
        )
        .unwrap()
    })
}

fn fake_stub() -> Vec<u8> {
    // A synthetic PE that carries the systemd-stub marker, so build_uki goes all the way.
    let mut img = pe::synthetic_efi_image(
        600,
        true,
        Some("sbat,1,SBAT Version,sbat,1,x\nsystemd-stub,1,x\n"),
    );
    let p = PeFile::parse(&img).unwrap();
    let s = p.section(".text").unwrap();
    let magic = b"#### LoaderInfo: systemd-stub 257 ####";
    let off = s.pointer_to_raw_data as usize;
    img[off..off + magic.len()].copy_from_slice(magic);
    // Rename .text to .sdmagic (same 8-byte field) so `.sdmagic` holds the marker.
    img[s.header_offset..s.header_offset + 8].copy_from_slice(b".sdmagic");
    img
}

fn exercise(data: &[u8]) {
    let _ = PeFile::parse(data);
    let _ = authenticode::authenticode_sha256(data);
    let _ = authenticode::verify(data, None);
    let _ = authenticode::extract_signature(data);
    let _ = uki::inspect(data);
    let _ = uki::kernel_release(data);
    let _ = uki::predict_pcr11(data);
    let _ = keys::parse_private_key(data);
    let _ = keys::parse_certificate(data);
    let _ = uki::merge_sbat(data, data, None);
    let stub = fake_stub();
    let initrd = [1u8, 2, 3];
    let base = UkiInputs {
        stub: &stub,
        linux: &stub,
        initrd: &initrd,
        cmdline: "a",
        osrel: "ID=x\n",
        uname: None,
        sbat: None,
    };
    let _ = uki::build_uki(&UkiInputs { stub: data, ..base });
    let _ = uki::build_uki(&UkiInputs {
        linux: data,
        ..base
    });
}

#[test]
fn fake_stub_builds() {
    let stub = fake_stub();
    uki::build_uki(&UkiInputs {
        stub: &stub,
        linux: &stub,
        initrd: &[1, 2, 3],
        cmdline: "a",
        osrel: "ID=x\n",
        uname: None,
        sbat: None,
    })
    .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&data);
    }

    #[test]
    fn mutated_pe_never_panics(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
                               cut in any::<prop::sample::Index>(), truncate in any::<bool>()) {
        let mut data = pe::synthetic_efi_image(700, false, Some("sbat,1,a\nb,1\n"));
        for (i, b) in &edits {
            let n = data.len();
            // Bias the edits toward the headers, where the offsets are.
            let pos = if i.index(4) == 0 { i.index(n) } else { i.index(0x200.min(n)) };
            data[pos] = *b;
        }
        if truncate {
            let n = data.len();
            data.truncate(cut.index(n + 1));
        }
        exercise(&data);
    }

    #[test]
    fn mutated_stub_never_panics(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                                 cut in any::<prop::sample::Index>(), truncate in any::<bool>()) {
        let mut stub = fake_stub();
        for (i, b) in &edits {
            let n = stub.len();
            let pos = if i.index(4) == 0 { i.index(n) } else { i.index(0x200.min(n)) };
            stub[pos] = *b;
        }
        if truncate {
            let n = stub.len();
            stub.truncate(cut.index(n + 1));
        }
        let kernel = pe::synthetic_efi_image(100, false, Some("sbat,1,a\nk,1\n"));
        let r = uki::build_uki(&UkiInputs {
            stub: &stub,
            linux: &kernel,
            initrd: &[9, 9],
            cmdline: "c",
            osrel: "ID=x\n",
            uname: Some("6"),
            sbat: None,
        });
        if let Ok(img) = r {
            exercise(&img);
        }
    }

    #[test]
    fn mutated_signed_pe_never_panics(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut data = signed_sample().clone();
        let n = data.len();
        let tail = n - 1500.min(n);
        for (i, b) in &edits {
            // Half of the edits hit the signature (the DER parser), half anywhere.
            let pos = if i.index(2) == 0 { tail + i.index(n - tail) } else { i.index(n) };
            data[pos] = *b;
        }
        exercise(&data);
    }
}
