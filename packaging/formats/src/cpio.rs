//! A deterministic writer for the kernel's initramfs format, "newc" cpio
//! (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Every byte of the output is a function of the entries given: the archive is written in
//! sorted path order, inode numbers are sequential from 1 in that order (the kernel
//! hard-links regular files that share an inode number), uid/gid are 0 and all entries carry
//! one mtime. Device nodes are plain header fields, so no root privileges are needed. The
//! headers themselves are written by the `cpio` crate (lowercase hex, as GNU cpio writes).

use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::io::Write;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDevice { major: u32, minor: u32 },
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub node: Node,
    /// Permission bits only (e.g. 0o755); the file type comes from `node`.
    pub perm: u32,
}

/// An archive under construction: paths are relative ("bin/init"), without leading "/".
#[derive(Default, Clone, Debug)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    /// Adds an entry, creating missing parent directories (0755). Adding a path twice is an
    /// error: two inputs claiming one path is a packaging bug, not something to resolve silently.
    pub fn add(&mut self, path: &str, node: Node, perm: u32) -> Result<()> {
        let path = normalize(path)?;
        if let Some(parent) = path.rsplit_once('/').map(|(p, _)| p.to_string()) {
            self.mkdir_p(&parent)?;
        }
        match self.entries.get(&path) {
            Some(existing) if existing.node == Node::Dir && node == Node::Dir => Ok(()),
            Some(_) => bail!("initramfs: two inputs for the path /{path}"),
            None => {
                self.entries.insert(
                    path,
                    Entry {
                        node,
                        perm: perm & 0o7777,
                    },
                );
                Ok(())
            }
        }
    }

    pub fn mkdir_p(&mut self, path: &str) -> Result<()> {
        let path = normalize(path)?;
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            match self.entries.get(&prefix) {
                None => {
                    self.entries.insert(
                        prefix.clone(),
                        Entry {
                            node: Node::Dir,
                            perm: 0o755,
                        },
                    );
                }
                Some(e) if e.node == Node::Dir => {}
                Some(_) => bail!("initramfs: /{prefix} is needed as a directory but is a file"),
            }
        }
        Ok(())
    }

    pub fn paths(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Serializes the archive. `mtime` is SOURCE_DATE_EPOCH. The newc headers are the
    /// `cpio` crate's; what goes into them is ours: entries sorted by path, inode numbers
    /// 1, 2, 3… in that order, uid/gid 0, one mtime for all, no device numbers but a char
    /// device's own.
    pub fn to_newc(&self, mtime: u64) -> Result<Vec<u8>> {
        let mtime = u32::try_from(mtime).map_err(|_| {
            anyhow::anyhow!("SOURCE_DATE_EPOCH {mtime} does not fit newc's 32 bits")
        })?;
        let mut out = Vec::new();
        for (ino, (path, entry)) in (1u32..).zip(self.entries.iter()) {
            let (mode, data, nlink, rdev): (u32, &[u8], u32, (u32, u32)) = match &entry.node {
                Node::Dir => (S_IFDIR | entry.perm, &[], 2, (0, 0)),
                Node::File(bytes) => (S_IFREG | entry.perm, bytes, 1, (0, 0)),
                Node::Symlink(target) => (S_IFLNK | 0o777, target.as_bytes(), 1, (0, 0)),
                Node::CharDevice { major, minor } => {
                    (S_IFCHR | entry.perm, &[], 1, (*major, *minor))
                }
            };
            let size = u32::try_from(data.len())
                .map_err(|_| anyhow::anyhow!("initramfs: /{path} is larger than 4 GiB"))?;
            let mut w = cpio::newc::Builder::new(path)
                .ino(ino)
                .mode(mode)
                .nlink(nlink)
                .mtime(mtime)
                .rdev_major(rdev.0)
                .rdev_minor(rdev.1)
                .write(&mut out, size);
            w.write_all(data)?;
            w.finish()?;
        }
        cpio::newc::trailer(&mut out)?;
        Ok(out)
    }
}

fn normalize(path: &str) -> Result<String> {
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    if trimmed.is_empty() {
        bail!("initramfs: empty path");
    }
    if trimmed
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("initramfs: path {path:?} must not contain empty, '.' or '..' components");
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            let h = &bytes[pos..pos + 110];
            assert_eq!(&h[..6], b"070701");
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).unwrap(), 16)
                    .unwrap()
            };
            let (ino, mode, size, namesize) = (field(0), field(1), field(6), field(11));
            let name_start = pos + 110;
            let name =
                String::from_utf8(bytes[name_start..name_start + namesize as usize - 1].to_vec())
                    .unwrap();
            pos = (name_start + namesize as usize).next_multiple_of(4);
            let data = bytes[pos..pos + size as usize].to_vec();
            pos = (pos + size as usize).next_multiple_of(4);
            if name == "TRAILER!!!" {
                assert_eq!(pos, bytes.len());
                return out;
            }
            out.push((name, ino, mode, data));
        }
    }

    #[test]
    fn entries_are_sorted_with_sequential_inodes_and_parents() {
        let mut a = Archive::new();
        a.add("/usr/share/x", Node::File(b"hello".to_vec()), 0o644)
            .unwrap();
        a.add(
            "/dev/console",
            Node::CharDevice { major: 5, minor: 1 },
            0o600,
        )
        .unwrap();
        a.add("/init", Node::File(vec![1, 2, 3]), 0o755).unwrap();
        a.add("/bin/nsh", Node::Symlink("/init".into()), 0).unwrap();
        let parsed = parse(&a.to_newc(42).unwrap());
        let names: Vec<_> = parsed.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/nsh",
                "dev",
                "dev/console",
                "init",
                "usr",
                "usr/share",
                "usr/share/x"
            ]
        );
        let inos: Vec<_> = parsed.iter().map(|e| e.1).collect();
        assert_eq!(inos, (1..=8).collect::<Vec<_>>());
        assert_eq!(parsed[3].2, S_IFCHR | 0o600);
        assert_eq!(parsed[1].3, b"/init");
        assert_eq!(parsed[7].3, b"hello");
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let mut a = Archive::new();
        let mut b = Archive::new();
        a.add("a/1", Node::File(vec![1]), 0o644).unwrap();
        a.add("b/2", Node::File(vec![2]), 0o644).unwrap();
        b.add("b/2", Node::File(vec![2]), 0o644).unwrap();
        b.add("a/1", Node::File(vec![1]), 0o644).unwrap();
        assert_eq!(a.to_newc(0).unwrap(), b.to_newc(0).unwrap());
    }

    #[test]
    fn duplicate_and_traversal_paths_are_rejected() {
        let mut a = Archive::new();
        a.add("x", Node::File(vec![]), 0o644).unwrap();
        assert!(a.add("/x", Node::File(vec![1]), 0o644).is_err());
        assert!(a.add("../etc/passwd", Node::File(vec![]), 0o644).is_err());
        assert!(a.add("x/y", Node::File(vec![]), 0o644).is_err());
    }

    #[test]
    fn cpio_tool_reads_the_archive() {
        // GNU cpio as an independent judge of the format (Debian package `cpio`).
        let mut a = Archive::new();
        a.add(
            "etc/os-release",
            Node::File(b"NAME=NekOS\n".to_vec()),
            0o644,
        )
        .unwrap();
        a.add(
            "dev/console",
            Node::CharDevice { major: 5, minor: 1 },
            0o600,
        )
        .unwrap();
        let bytes = a.to_newc(1_700_000_000).unwrap();
        let mut child = std::process::Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cpio (Debian package cpio) must be installed");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let listing = String::from_utf8(out.stdout).unwrap();
        assert!(listing.contains("crw-------"), "{listing}");
        assert!(
            listing.contains("5,   1") || listing.contains("5,  1"),
            "{listing}"
        );
        assert!(listing.contains("etc/os-release"), "{listing}");
    }
}
