#![allow(dead_code)]
use std::path::PathBuf;

pub fn fixture(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

pub fn read(p: &str) -> Vec<u8> {
    std::fs::read(fixture(p)).unwrap()
}

/// (report path, VCEK path) of the three real reports.
pub const REAL: [(&str, &str); 3] = [
    (
        "ms-tav-milan/milan_attestation_report.bin",
        "ms-tav-milan/milan_vcek.pem",
    ),
    ("go-sev-guest/attestation.bin", "go-sev-guest/vcek.testcer"),
    ("virtee-sev/report_milan.hex", "virtee-sev/vcek_milan.der"),
];

pub fn report_bytes(p: &str) -> Vec<u8> {
    snpcheck::report::from_file_bytes(&read(p))
        .unwrap()
        .bytes()
        .to_vec()
}
