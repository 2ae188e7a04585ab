//! The project's shape, checked: the layer crates depend one way (formats → build → lab →
//! the CLI), the formats do no I/O, and within each crate (host and guest) no file imports,
//! directly or through others, a file that imports it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn packaging() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The crate's source files as module paths (`uki`, `snp::ovmf`) → text without comments and
/// without the trailing `#[cfg(test)]` module (tests may use anything).
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut name = rel.to_string_lossy().replace('/', "::");
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_string();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: String = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name, code);
        }
    }
    out
}

/// `crate::a::b` and `super::x` references that name another file of the crate.
fn imports(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (name, code) in mods {
        let mut to = BTreeSet::new();
        let parent = name.rsplit_once("::").map_or("", |(p, _)| p);
        for (prefix, base) in [("crate::", String::new()), ("super::", parent.to_string())] {
            for (i, _) in code.match_indices(prefix) {
                let before = code[..i].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let path: String = code[i + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
                // The longest prefix of the path that is a file of this crate.
                for n in (1..=segs.len()).rev() {
                    let mut target = segs[..n].join("::");
                    if !base.is_empty() {
                        target = format!("{base}::{target}");
                    }
                    if mods.contains_key(&target) {
                        if &target != name {
                            to.insert(target);
                        }
                        break;
                    }
                }
            }
        }
        edges.insert(name.clone(), to);
    }
    edges
}

/// A cycle in the graph, if there is one (as the list of files around it).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| p == n).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if let Some(c) = visit(n, edges, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_file_imports_a_file_that_imports_it_in_any_crate() {
    // The host layers, and the guest crates whose two circles (compositor state ↔ backend,
    // init ↔ stage 1) were undone.
    for src in [
        "formats/src",
        "build/src",
        "lab/src",
        "src",
        "../compositor/src",
        "../viewer/src",
        "../init/src",
        "../init/stboot/src",
        "../snpcheck/src",
        "../ospkg/src",
    ] {
        let mods = modules(&packaging().join(src));
        assert!(mods.len() > 3, "{src}: {} files", mods.len());
        let edges = imports(&mods);
        if let Some(cycle) = find_cycle(&edges) {
            panic!("packaging/{src}: import circle {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_planted_circle() {
    // The check above must be able to fail: a → b → c → a.
    let mut mods = BTreeMap::new();
    mods.insert("a".to_string(), "use crate::b::X;".to_string());
    mods.insert("b".to_string(), "fn f() { crate::c::g() }".to_string());
    mods.insert("c".to_string(), "use super::a;".to_string());
    let cycle = find_cycle(&imports(&mods)).expect("a planted circle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
}

/// The dependencies between the layer crates point one way.
#[test]
fn the_layers_depend_one_way() {
    let deps = |krate: &str| -> String {
        let text = std::fs::read_to_string(packaging().join(krate).join("Cargo.toml")).unwrap();
        let deps = text.split("[dependencies]").nth(1).unwrap_or_default();
        deps.split("\n[").next().unwrap_or_default().to_string()
    };
    let formats = deps("formats");
    assert!(!formats.contains("nekos-build") && !formats.contains("nekos-lab"));
    assert!(
        !formats.contains("nekos-"),
        "formats depends on no project crate"
    );
    let build = deps("build");
    assert!(build.contains("nekos-formats") && !build.contains("nekos-lab"));
    let lab = deps("lab");
    assert!(lab.contains("nekos-build"));
}

/// Bytes in, bytes out: the formats crate runs nothing, reads no file, no clock and no
/// environment (key generation's OS RNG is the one documented exception).
#[test]
fn the_formats_do_no_io() {
    let mods = modules(&packaging().join("formats/src"));
    for (name, code) in &mods {
        for forbidden in [
            "std::process",
            "Command::new",
            "std::fs",
            "fs::read",
            "File::open",
            "SystemTime",
            "Instant::now",
            "std::env",
            "env::var",
        ] {
            assert!(
                !code.contains(forbidden),
                "packaging/formats/src: {name} uses {forbidden}"
            );
        }
    }
}
