//! The OVMF parser and the digest never panic on arbitrary or mutated images.

use nekos_packaging::snpmeasure::synth::SyntheticOvmf;
use nekos_packaging::snpmeasure::{self, Inputs, Ovmf, VcpuType};
use proptest::prelude::*;

fn try_digest(img: &[u8], kernel: bool, vcpus: u32) {
    let Ok(o) = Ovmf::parse(img) else { return };
    let _ = o.sev_es_reset_eip();
    let _ = o.sev_hashes_table_gpa();
    let _ = o.gpa();
    // Keep each case fast: huge zero-page regions are legal but slow to chain.
    if o.sections().iter().any(|s| s.size > 1 << 20) {
        return;
    }
    let _ = snpmeasure::launch_digest(&Inputs {
        ovmf: img,
        kernel: kernel.then_some(b"k".as_slice()),
        initrd: None,
        append: None,
        vcpus,
        vcpu_type: VcpuType::EpycMilan,
        guest_features: 1,
    });
}

/// The footer GUID, bytes_le, planted so random data reaches the table walk.
const FOOTER: [u8; 16] = [
    0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..9000)) {
        try_digest(&data, true, 2);
    }

    #[test]
    fn arbitrary_table(mut data in proptest::collection::vec(any::<u8>(), 64..9000), size in any::<u16>()) {
        let at = data.len() - 32 - 18;
        data[at..at + 2].copy_from_slice(&size.to_le_bytes());
        data[at + 2..at + 18].copy_from_slice(&FOOTER);
        try_digest(&data, false, 1);
    }

    #[test]
    fn mutated_synthetic(
        pages in 2u32..6,
        sections in proptest::collection::vec((any::<u32>(), 0u32..0x8000, prop_oneof![Just(1u32), Just(2), Just(3), Just(4), Just(0x10), any::<u32>()]), 0..8),
        eip in proptest::option::of(any::<u32>()),
        hgpa in proptest::option::of(any::<u32>()),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        kernel in any::<bool>(),
        vcpus in 0u32..4,
    ) {
        let mut img = SyntheticOvmf { pages, sections: Some(sections), reset_eip: eip, hashes_table_gpa: hgpa, seed: 3 }.build();
        // Mutate near the end, where the table and metadata pointers live, and anywhere.
        let n = img.len();
        for (i, (idx, b)) in flips.iter().enumerate() {
            let pos = if i % 2 == 0 { n - 1 - idx.index(256) } else { idx.index(n) };
            img[pos] ^= b;
        }
        try_digest(&img, kernel, vcpus);
    }
}
