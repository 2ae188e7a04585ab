//! The probe's decisions as pure functions (host-tested): which photo, and the numbers of
//! the `probe: mem` line.

use nekos_viewer::order::{Browser, OrderMode, seed_from_str};

/// The value of `key=` on the kernel command line (the last one wins, as in init).
/// Quoting is not needed for the two numeric/word options the probe reads.
pub fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

/// The index (into `names`, sorted as the viewer lists them) of the photo the probe shows:
/// with `nekos.seed=` on the command line, the one NekOS's viewer shows first with that seed
/// and `nekos.order=` (the viewer's own `Browser`); without a seed (NekOS would then shuffle
/// by boot time, so there is no "same" photo), the first JPEG in name order, else the first
/// photo. `None` only for an empty list.
pub fn pick_photo(names: &[String], cmdline: &str) -> Option<usize> {
    if names.is_empty() {
        return None;
    }
    if let Some(seed) = cmdline_value(cmdline, "nekos.seed") {
        let order = match cmdline_value(cmdline, "nekos.order") {
            Some("name") => OrderMode::Name,
            _ => OrderMode::Shuffle,
        };
        return Browser::new(names.len(), order, seed_from_str(seed)).next();
    }
    let is_jpeg = |n: &String| {
        let l = n.to_ascii_lowercase();
        l.ends_with(".jpg") || l.ends_with(".jpeg")
    };
    Some(names.iter().position(is_jpeg).unwrap_or(0))
}

/// `kB` value of `field:` in /proc/meminfo or /proc/<pid>/status text.
pub fn kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_ascii_whitespace().next()?.parse().ok()
    })
}

/// The line the bench reads: `probe: mem used_kb=<MemTotal-MemFree> rss_kb=<VmRSS>`.
pub fn mem_line(meminfo: &str, status: &str) -> String {
    let used = match (kb_field(meminfo, "MemTotal"), kb_field(meminfo, "MemFree")) {
        (Some(t), Some(f)) => t.saturating_sub(f).to_string(),
        _ => "unknown".into(),
    };
    let rss = kb_field(status, "VmRSS").map_or_else(|| "unknown".into(), |v| v.to_string());
    format!("probe: mem used_kb={used} rss_kb={rss}")
}

/// One timeline mark, in the format every compared system prints.
pub fn mark(ms: u64, phase: &str) -> String {
    format!("nekos: t={ms} {phase}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_seeded_photo_is_the_viewers_first() {
        let n = names(&[
            "chelsea.png",
            "ginger-kitten.jpg",
            "grey-longhair.jpg",
            "tabby-kitten.jpg",
            "white-kitten.jpg",
        ]);
        for seed in [0u64, 7, 42, u64::MAX] {
            let cmd = format!("quiet nekos.seed={seed} console=ttyS0");
            let want = Browser::new(n.len(), OrderMode::Shuffle, seed).next();
            assert_eq!(pick_photo(&n, &cmd), want, "seed {seed}");
        }
        // Name order with a seed: the first by name, as the viewer.
        assert_eq!(pick_photo(&n, "nekos.seed=3 nekos.order=name"), Some(0));
        // No seed: the first JPEG by name.
        assert_eq!(pick_photo(&n, "console=ttyS0"), Some(1));
        assert_eq!(pick_photo(&names(&["a.png"]), ""), Some(0));
        assert_eq!(pick_photo(&[], "nekos.seed=1"), None);
    }

    #[test]
    fn the_last_option_wins_and_prefixes_do_not_match() {
        assert_eq!(
            cmdline_value("nekos.seed=1 nekos.seed=2", "nekos.seed"),
            Some("2")
        );
        assert_eq!(cmdline_value("nekos.seedling=1", "nekos.seed"), None);
        assert_eq!(cmdline_value("", "nekos.seed"), None);
    }

    #[test]
    fn the_mem_line_is_used_and_rss() {
        let meminfo =
            "MemTotal:         500000 kB\nMemFree:          480000 kB\nMemAvailable: 1 kB\n";
        let status = "Name:\tinit\nVmRSS:\t     712 kB\n";
        assert_eq!(
            mem_line(meminfo, status),
            "probe: mem used_kb=20000 rss_kb=712"
        );
        assert_eq!(
            mem_line("", ""),
            "probe: mem used_kb=unknown rss_kb=unknown"
        );
        assert_eq!(mark(134, "frame-shown"), "nekos: t=134 frame-shown");
    }
}
