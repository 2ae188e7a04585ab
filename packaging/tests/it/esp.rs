//! ESP disk images, judged by the real tools: sfdisk (partition table), fsck.fat (file
//! system), mtools (directory listing and file contents).

use nekos_packaging::esp::{
    ESP_TYPE_GUID, EspFile, EspOptions, PARTITION_OFFSET, build_esp_image, guid_to_string,
    write_esp_image,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TIMESTAMP: u64 = 1_735_689_600; // 2025-01-01T00:00:00Z

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nekos-esp-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn file(path: &str, bytes: Vec<u8>) -> EspFile {
    EspFile {
        path: path.to_string(),
        bytes,
    }
}

fn sample_files() -> Vec<EspFile> {
    vec![
        file("EFI/BOOT/BOOTX64.EFI", noise(12 * 1024 * 1024 + 123, 1)),
        file("EFI/NEKOS/ONE.BIN", noise(512, 2)),
        file("EFI/NEKOS/TWO.BIN", noise(513, 3)),
        file("EMPTY.TXT", Vec::new()),
        file("loader/entries/nekos.cfg", b"title NekOS\n".to_vec()),
        file("A/B/C/D/E/DEEP.DAT", noise(4096, 4)),
        file("README", b"NekOS ESP\r\n".to_vec()),
        // VFAT long names: lowercase 8.3, several entries, exactly 13 units, numbered
        // short names that collide, spaces, non-ASCII.
        file("EFI/systemd/systemd-bootx64.efi", noise(100_000, 5)),
        file("EFI/Linux/abcdefghijklm", noise(1000, 6)),
        file("EFI/Linux/Long File Name 1.txt", b"one".to_vec()),
        file("EFI/Linux/Long File Name 2.txt", b"two".to_vec()),
        file("EFI/Linux/LONGFI~1.TXT", b"short".to_vec()),
        file(
            "EFI/Microsoft Boot/Grüße.conf",
            "grüße\n".as_bytes().to_vec(),
        ),
    ]
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mtools_image(disk: &Path) -> String {
    format!("{}@@{}", disk.display(), PARTITION_OFFSET)
}

/// The partition's bytes, as sfdisk locates them.
fn sfdisk_partition(disk: &Path) -> (serde_json::Value, u64, u64) {
    let json: serde_json::Value =
        serde_json::from_slice(&run(Command::new("sfdisk").arg("--json").arg(disk)).stdout)
            .unwrap();
    let table = json["partitiontable"].clone();
    let parts = table["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "{table}");
    let start = parts[0]["start"].as_u64().unwrap();
    let size = parts[0]["size"].as_u64().unwrap();
    (table, start, size)
}

/// fsck.fat (read-only, verbose) and blkid on the partition's bytes; returns blkid's
/// `KEY=value` lines.
fn check_fat32(dir: &Path, disk: &Path) -> String {
    let (_, start, size) = sfdisk_partition(disk);
    let image = fs::read(disk).unwrap();
    let part_img = dir.join("part.img");
    fs::write(
        &part_img,
        &image[(start * 512) as usize..((start + size) * 512) as usize],
    )
    .unwrap();
    let fsck = run(Command::new("fsck.fat").arg("-n").arg("-v").arg(&part_img));
    let report = stdout(&fsck) + &String::from_utf8_lossy(&fsck.stderr);
    assert!(
        report.contains("32 bit entries"),
        "fsck.fat does not see FAT32:\n{report}"
    );
    for bad in [
        "differ", "wrong", "Dirty", "Unable", "rror", "nvalid", "Correct", "Fix", "ad ", "rphan",
        "hecksum", "Long", "long",
    ] {
        assert!(
            !report.contains(bad),
            "fsck.fat reported {bad:?}:\n{report}"
        );
    }
    eprintln!("{report}");
    let blkid = stdout(&run(Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(&part_img)));
    eprintln!("{blkid}");
    assert!(blkid.lines().any(|l| l == "TYPE=vfat"), "{blkid}");
    assert!(blkid.lines().any(|l| l == "VERSION=FAT32"), "{blkid}");
    blkid
}

#[test]
fn judges_accept_the_image() {
    let dir = tmpdir("judges");
    let files = sample_files();
    let opts = EspOptions::from_seed("judges", TIMESTAMP);
    let disk = dir.join("disk.img");
    write_esp_image(&disk, &files, &opts).unwrap();
    let len = fs::metadata(&disk).unwrap().len();
    assert_eq!(len, 64 << 20, "a 12 MiB loader fits the default 64 MiB");

    // Partition table.
    let (table, start, size) = sfdisk_partition(&disk);
    assert_eq!(
        size,
        len / 512 - 2 * 2048,
        "the partition spans [1 MiB, size - 1 MiB)"
    );
    assert_eq!(table["label"], "gpt");
    assert_eq!(
        table["id"].as_str().unwrap().to_uppercase(),
        guid_to_string(&opts.disk_guid)
    );
    let part = &table["partitions"][0];
    assert_eq!(
        part["type"].as_str().unwrap().to_uppercase(),
        guid_to_string(&ESP_TYPE_GUID)
    );
    assert_eq!(
        part["uuid"].as_str().unwrap().to_uppercase(),
        guid_to_string(&opts.partition_guid)
    );
    assert_eq!(part["name"], "EFI System Partition");
    assert_eq!(start, 2048);
    assert_eq!(start * 512, PARTITION_OFFSET);
    assert_eq!(table["firstlba"], 34);
    assert_eq!(table["lastlba"].as_u64().unwrap(), len / 512 - 34);
    let verify = run(Command::new("sfdisk").arg("--verify").arg(&disk));
    assert!(
        stdout(&verify).contains("No errors detected"),
        "{}",
        stdout(&verify)
    );

    // File system, checked on the partition alone.
    let blkid = check_fat32(&dir, &disk);
    assert!(blkid.lines().any(|l| l == "LABEL=NEKOS-ESP"), "{blkid}");
    let volume_id = format!(
        "{:04X}-{:04X}",
        opts.volume_id >> 16,
        opts.volume_id & 0xFFFF
    );
    assert!(
        blkid.lines().any(|l| l == format!("UUID={volume_id}")),
        "{blkid}"
    );

    // Directory listing.
    let img = mtools_image(&disk);
    let listing = stdout(&run(Command::new("mdir").args(["-i", &img, "::/EFI/BOOT"])));
    assert!(listing.contains("BOOTX64  EFI"), "{listing}");
    assert!(
        listing.contains(&format!("{}", 12 * 1024 * 1024 + 123)),
        "{listing}"
    );
    assert!(listing.contains("2025-01-01"), "{listing}");
    let root = stdout(&run(Command::new("mdir").args(["-i", &img, "::/"])));
    assert!(root.contains("Volume in drive : is NEKOS-ESP"), "{root}");
    assert!(root.contains(&volume_id), "{root}");

    // Every file round-trips, under its own name and under its uppercase one (FAT is
    // case-insensitive).
    let sources = files.iter().flat_map(|f| {
        let upper = f
            .path
            .is_ascii()
            .then(|| (f, format!("::/{}", f.path.to_uppercase())));
        std::iter::once((f, format!("::/{}", f.path))).chain(upper)
    });
    for (f, src) in sources {
        let out = dir.join("out");
        let _ = fs::remove_file(&out);
        run(Command::new("mcopy")
            .args(["-n", "-i", &img, &src])
            .arg(&out));
        assert!(
            fs::read(&out).unwrap() == f.bytes,
            "{} differs after mcopy",
            f.path
        );
    }
    let typed = run(Command::new("mtype").args(["-i", &img, "::/LOADER/ENTRIES/NEKOS.CFG"]));
    assert_eq!(typed.stdout, b"title NekOS\n");

    // The whole tree, recursively: nothing more than what was given.
    let all = stdout(&run(
        Command::new("mdir").args(["-/", "-b", "-i", &img, "::/"])
    ));
    eprintln!(
        "{}",
        stdout(&run(Command::new("mdir").args(["-/", "-i", &img, "::/EFI"])))
    );
    let mut listed: Vec<&str> = all.lines().filter(|l| !l.ends_with('/')).collect();
    listed.sort();
    let mut expected: Vec<String> = files.iter().map(|f| format!("::/{}", f.path)).collect();
    expected.sort();
    assert_eq!(listed, expected, "{all}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_file_list_is_a_valid_empty_volume() {
    let dir = tmpdir("empty");
    let mut opts = EspOptions::from_seed("empty", 0);
    opts.volume_label = String::new();
    let disk = dir.join("disk.img");
    write_esp_image(&disk, &[], &opts).unwrap();
    let blkid = check_fat32(&dir, &disk);
    assert!(!blkid.contains("LABEL="), "{blkid}");
    let root = stdout(&run(Command::new("mdir").args([
        "-i",
        &mtools_image(&disk),
        "::/",
    ])));
    assert!(root.contains("has no label"), "{root}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn larger_files_grow_the_default_size_and_explicit_sizes_are_kept() {
    let big = vec![file("EFI/BOOT/BOOTX64.EFI", vec![0xA5; 40 << 20])];
    let opts = EspOptions::from_seed("size", TIMESTAMP);
    let image = build_esp_image(&big, &opts).unwrap();
    assert!(
        image.len() > 64 << 20 && image.len().is_multiple_of(1 << 20),
        "{}",
        image.len()
    );
    let image = build_esp_image(
        &big,
        &EspOptions {
            size_mib: Some(48),
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(image.len(), 48 << 20);

    // Check the larger image with the judges too: clusters beyond 65536 (FstClusHI) in use.
    let dir = tmpdir("size");
    let disk = dir.join("disk.img");
    let files = vec![
        file("PAD.BIN", vec![7; 40 << 20]),
        file("EFI/BOOT/BOOTX64.EFI", noise(3 << 20, 9)),
    ];
    write_esp_image(
        &disk,
        &files,
        &EspOptions {
            size_mib: Some(100),
            ..opts
        },
    )
    .unwrap();
    check_fat32(&dir, &disk);
    let out = dir.join("out");
    run(Command::new("mcopy")
        .args(["-n", "-i", &mtools_image(&disk), "::/EFI/BOOT/BOOTX64.EFI"])
        .arg(&out));
    assert!(fs::read(&out).unwrap() == files[1].bytes);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn builds_are_reproducible_and_the_seed_changes_only_the_ids() {
    let files = sample_files();
    let a = build_esp_image(&files, &EspOptions::from_seed("one", TIMESTAMP)).unwrap();
    let b = build_esp_image(&files, &EspOptions::from_seed("one", TIMESTAMP)).unwrap();
    assert!(a == b, "two builds from the same inputs differ");

    // Input order does not matter.
    let mut reversed = files.clone();
    reversed.reverse();
    let r = build_esp_image(&reversed, &EspOptions::from_seed("one", TIMESTAMP)).unwrap();
    assert!(a == r, "file order changed the image");

    let other = EspOptions::from_seed("two", TIMESTAMP);
    let one = EspOptions::from_seed("one", TIMESTAMP);
    assert_ne!(one.disk_guid, other.disk_guid);
    assert_ne!(one.partition_guid, other.partition_guid);
    assert_ne!(one.volume_id, other.volume_id);
    let c = build_esp_image(&files, &other).unwrap();
    assert_eq!(a.len(), c.len());
    let last = a.len() - 512;
    let backup_entries = last - 32 * 512;
    let allowed = |i: usize| {
        let part = PARTITION_OFFSET as usize;
        (512..512 + 92).contains(&i) // primary header (disk GUID, CRCs)
            || (1024..1024 + 32).contains(&i) // first partition entry: unique GUID
            || (last..last + 92).contains(&i) // backup header
            || (backup_entries..backup_entries + 32).contains(&i) // backup first entry
            || (part + 67..part + 71).contains(&i) // BS_VolID
            || (part + 6 * 512 + 67..part + 6 * 512 + 71).contains(&i) // backup BS_VolID
    };
    let diffs: Vec<usize> = (0..a.len()).filter(|&i| a[i] != c[i]).collect();
    assert!(!diffs.is_empty());
    let unexpected: Vec<usize> = diffs.iter().copied().filter(|&i| !allowed(i)).collect();
    assert!(
        unexpected.is_empty(),
        "seed changed bytes at {unexpected:?}"
    );

    // A different timestamp changes the directory entries only.
    let d = build_esp_image(&files, &EspOptions::from_seed("one", TIMESTAMP + 86_400)).unwrap();
    assert!(a != d);
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn gpt_checksums_recompute() {
    let image = build_esp_image(&sample_files(), &EspOptions::from_seed("crc", TIMESTAMP)).unwrap();
    let sectors = (image.len() / 512) as u64;
    // Protective MBR.
    assert_eq!(&image[510..512], &[0x55, 0xAA]);
    assert_eq!(image[446 + 4], 0xEE);
    assert_eq!(le32(&image, 446 + 8), 1);
    assert_eq!(u64::from(le32(&image, 446 + 12)), sectors - 1);
    for (lba, alternate, entries_lba) in [(1, sectors - 1, 2), (sectors - 1, 1, sectors - 33)] {
        let h = &image[(lba * 512) as usize..(lba * 512) as usize + 512];
        assert_eq!(&h[..8], b"EFI PART");
        assert_eq!(le32(h, 12), 92);
        let mut copy = h[..92].to_vec();
        copy[16..20].fill(0);
        assert_eq!(
            le32(h, 16),
            crc32fast::hash(&copy),
            "header CRC at LBA {lba}"
        );
        assert!(h[92..].iter().all(|&b| b == 0));
        assert_eq!(le64(h, 24), lba);
        assert_eq!(le64(h, 32), alternate);
        assert_eq!(le64(h, 72), entries_lba);
        let entries =
            &image[(entries_lba * 512) as usize..(entries_lba * 512) as usize + 128 * 128];
        assert_eq!(
            le32(h, 88),
            crc32fast::hash(entries),
            "entry array CRC at LBA {entries_lba}"
        );
    }
}

fn error_of(files: &[EspFile], opts: &EspOptions) -> String {
    format!("{:#}", build_esp_image(files, opts).unwrap_err())
}

#[test]
fn bad_inputs_are_errors() {
    let opts = EspOptions::from_seed("bad", TIMESTAMP);
    let one = |path: &str| vec![file(path, vec![1, 2, 3])];

    let long = "x".repeat(256);
    for bad in [
        "/EFI/X.EFI",
        "EFI//X.EFI",
        "EFI/X.EFI/",
        "",
        "EFI/../X.EFI",
        "EFI/./X",
        "A.",
        "A ",
        "a*b",
        "a:b",
        "a\\b",
        "tab\t",
        long.as_str(),
    ] {
        let e = error_of(&one(bad), &opts);
        assert!(
            e.contains("not a valid FAT path") && e.contains(&format!("'{bad}'")),
            "{bad:?}: {e}"
        );
    }
    assert!(build_esp_image(&one(&"x".repeat(255)), &opts).is_ok());

    let dup = vec![
        file("EFI/BOOT/BOOTX64.EFI", vec![1]),
        file("EFI/BOOT/BOOTX64.EFI", vec![2]),
    ];
    assert!(error_of(&dup, &opts).contains("given twice"));
    let case_dup = vec![
        file("EFI/BOOT/BOOTX64.EFI", vec![1]),
        file("EFI/BOOT/bootx64.efi", vec![2]),
    ];
    assert!(
        error_of(&case_dup, &opts).contains("case-insensitive"),
        "{}",
        error_of(&case_dup, &opts)
    );
    let spelling = vec![
        file("EFI/BOOT/A.EFI", vec![1]),
        file("efi/boot/B.EFI", vec![2]),
    ];
    let e = error_of(&spelling, &opts);
    assert!(e.contains("spells directory 'efi'"), "{e}");
    let file_then_dir = vec![file("EFI", vec![1]), file("EFI/BOOT/BOOTX64.EFI", vec![2])];
    assert!(
        error_of(&file_then_dir, &opts).contains("is a file"),
        "{}",
        error_of(&file_then_dir, &opts)
    );
    let dir_then_file = vec![file("EFI/BOOT/BOOTX64.EFI", vec![2]), file("EFI", vec![1])];
    assert!(error_of(&dir_then_file, &opts).contains("also a directory"));

    let too_big = vec![file("BIG.BIN", vec![0; 70 << 20])];
    let e = error_of(
        &too_big,
        &EspOptions {
            size_mib: Some(64),
            ..opts.clone()
        },
    );
    assert!(e.contains("only has"), "{e}");
    let e = error_of(
        &[],
        &EspOptions {
            size_mib: Some(16),
            ..opts.clone()
        },
    );
    assert!(e.contains("too small for FAT32"), "{e}");
    let e = error_of(
        &[],
        &EspOptions {
            size_mib: Some(u32::MAX),
            ..opts.clone()
        },
    );
    assert!(e.contains("larger than"), "{e}");
    let e = error_of(
        &[],
        &EspOptions {
            volume_label: "TWELVE CHARS".into(),
            ..opts.clone()
        },
    );
    assert!(e.contains("longer than 11"), "{e}");
    let e = error_of(
        &[],
        &EspOptions {
            volume_label: "A/B".into(),
            ..opts
        },
    );
    assert!(e.contains("not allowed"), "{e}");
}

/// Boots a real UKI from the image in QEMU/OVMF when `NEKOS_ESP_BOOT_UKI` names one (not
/// part of the normal run: it needs a built UKI and takes a while).
#[test]
fn ovmf_boots_the_loader_when_a_uki_is_given() {
    let Ok(uki) = std::env::var("NEKOS_ESP_BOOT_UKI") else {
        eprintln!("NEKOS_ESP_BOOT_UKI not set; skipping the OVMF boot");
        return;
    };
    let dir = tmpdir("ovmf");
    let disk = dir.join("disk.img");
    let files = vec![file("EFI/BOOT/BOOTX64.EFI", fs::read(&uki).unwrap())];
    write_esp_image(&disk, &files, &EspOptions::from_seed("ovmf", TIMESTAMP)).unwrap();
    let code = std::env::var("NEKOS_ESP_OVMF_CODE")
        .unwrap_or_else(|_| "/usr/share/OVMF/OVMF_CODE_4M.fd".into());
    let vars = dir.join("vars.fd");
    fs::copy(
        std::env::var("NEKOS_ESP_OVMF_VARS")
            .unwrap_or_else(|_| "/usr/share/OVMF/OVMF_VARS_4M.fd".into()),
        &vars,
    )
    .unwrap();
    let expect = std::env::var("NEKOS_ESP_BOOT_EXPECT").unwrap_or_else(|_| "Linux version".into());
    let log = dir.join("serial.log");
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35",
            "-m",
            "1024",
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
        ])
        .arg(format!("file:{}", log.display()))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={code}"
        ))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            vars.display()
        ))
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", disk.display()))
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let mut seen = false;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_secs(1));
        if String::from_utf8_lossy(&fs::read(&log).unwrap_or_default()).contains(&expect) {
            seen = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let serial = String::from_utf8_lossy(&fs::read(&log).unwrap_or_default()).into_owned();
    assert!(seen, "{expect:?} not on the serial console:\n{serial}");
    for line in serial
        .lines()
        .filter(|l| l.contains("BdsDxe") || l.contains(&expect))
    {
        eprintln!("serial: {line}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Today's bytes, pinned: the layout is a contract (derived GUIDs, MiB alignment, FAT32
/// geometry), so a change of any byte for fixed inputs must be deliberate and show up here.
#[test]
fn image_bytes_are_pinned() {
    let sample =
        build_esp_image(&sample_files(), &EspOptions::from_seed("pin", TIMESTAMP)).unwrap();
    let mut empty_opts = EspOptions::from_seed("pin-empty", 0);
    empty_opts.volume_label = String::new();
    let empty = build_esp_image(&[], &empty_opts).unwrap();
    assert_eq!(
        sha256_hex(&sample),
        "ab3baa5e9aacb584c46c8091fec250b124e559d3a1274cb8fc26503a8a255b99"
    );
    assert_eq!(
        sha256_hex(&empty),
        "3370812c964b8117a567f49ac8e84c5821713f61b2cf9ab5afabbb1e7555b7c3"
    );
}
