//! The guest binaries must be fully static: no ELF interpreter, no NEEDED libraries.
//! Checks the musl release builds if they exist (build them first with
//! `cargo build --release --target x86_64-unknown-linux-musl -p nekos-compositor -p nekos-viewer`);
//! set NEKOS_REQUIRE_STATIC=1 to fail instead of skip when they are missing.

use std::path::{Path, PathBuf};

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;

fn u16le(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64le(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// (has PT_INTERP, number of DT_NEEDED entries) of an ELF64 little-endian file.
fn inspect(elf: &[u8]) -> (bool, usize) {
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "not ELF64");
    assert_eq!(elf[5], 1, "not little-endian");
    let phoff = u64le(elf, 0x20) as usize;
    let phentsize = u16le(elf, 0x36) as usize;
    let phnum = u16le(elf, 0x38) as usize;
    let mut interp = false;
    let mut needed = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let ty = u32le(elf, ph);
        let offset = u64le(elf, ph + 8) as usize;
        let filesz = u64le(elf, ph + 32) as usize;
        match ty {
            PT_INTERP => interp = true,
            PT_DYNAMIC => {
                for d in elf[offset..offset + filesz].chunks_exact(16) {
                    let tag = u64le(d, 0);
                    if tag == 0 {
                        break;
                    }
                    if tag == DT_NEEDED {
                        needed += 1;
                    }
                }
            }
            _ => {}
        }
    }
    (interp, needed)
}

fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // .../target/<profile>/nekos-compositor
    Path::new(env!("CARGO_BIN_EXE_nekos-compositor"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn musl_binaries_are_static() {
    let dir = target_dir().join("x86_64-unknown-linux-musl/release");
    let mut checked = 0;
    for name in ["nekos-compositor", "nekos-viewer"] {
        let p = dir.join(name);
        let Ok(elf) = std::fs::read(&p) else {
            if std::env::var_os("NEKOS_REQUIRE_STATIC").is_some() {
                panic!("{} is missing", p.display());
            }
            eprintln!("skipping {}: not built", p.display());
            continue;
        };
        let (interp, needed) = inspect(&elf);
        assert!(!interp, "{name} has an ELF interpreter");
        assert_eq!(needed, 0, "{name} needs shared libraries");
        checked += 1;
    }
    eprintln!("checked {checked} static binaries in {}", dir.display());
}

#[test]
fn inspector_sees_a_dynamic_binary() {
    // Sanity check of the parser on a binary that is dynamic on any glibc host.
    let Ok(elf) = std::fs::read("/bin/sh").or_else(|_| std::fs::read("/usr/bin/env")) else {
        return;
    };
    if elf.get(4) != Some(&2) {
        return;
    }
    let (interp, needed) = inspect(&elf);
    assert!(interp || needed == 0);
}
