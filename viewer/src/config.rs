//! Viewer settings from the environment (set by init) and the command line.

use std::path::PathBuf;
use std::time::Duration;

use crate::geometry::ScaleMode;
use crate::order::{OrderMode, seed_from_str};

pub const DEFAULT_DIR: &str = "/usr/share/nekos/cats";
pub const DEFAULT_INTERVAL_SECS: f64 = 5.0;

#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub interval: Duration,
    pub order: OrderMode,
    pub scale: ScaleMode,
    pub seed: u64,
}

pub const USAGE: &str = "\
usage: nekos-viewer [DIR]

Shows the JPEG/PNG photos in DIR (default /usr/share/nekos/cats) full screen.
Environment: NEKOS_SEED (shuffle seed; default from CLOCK_BOOTTIME),
NEKOS_INTERVAL (seconds per photo, default 5), NEKOS_ORDER=shuffle|name,
NEKOS_SCALE=fit|fill|actual. Keys: Right/Space next, Left previous,
P pause/resume, Home first. Needs a Wayland compositor (WAYLAND_SOCKET or
WAYLAND_DISPLAY).";

/// The guest's clock: time since boot (the kernel's own log uses it too). Other hosts
/// (macOS, where only the pure parts run) fall back to their monotonic clock.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const BOOT_CLOCK: rustix::time::ClockId = rustix::time::ClockId::Boottime;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const BOOT_CLOCK: rustix::time::ClockId = rustix::time::ClockId::Monotonic;

/// Nanoseconds of CLOCK_BOOTTIME: a seed that never blocks (unlike getrandom early
/// in boot).
pub fn boottime_nanos() -> u64 {
    let ts = rustix::time::clock_gettime(BOOT_CLOCK);
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

impl Config {
    /// `args` without the program name; `env` looks up a variable.
    pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let mut dir = None;
        for a in args {
            if a.starts_with('-') {
                return Err(format!("unknown option {a:?}"));
            }
            if dir.replace(PathBuf::from(a)).is_some() {
                return Err("more than one directory given".into());
            }
        }
        let interval = match env("NEKOS_INTERVAL") {
            None => DEFAULT_INTERVAL_SECS,
            Some(s) if s.trim().is_empty() => DEFAULT_INTERVAL_SECS,
            Some(s) => match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => v.clamp(0.05, 86_400.0),
                _ => {
                    eprintln!("viewer: ignoring NEKOS_INTERVAL={s:?}");
                    DEFAULT_INTERVAL_SECS
                }
            },
        };
        let order = match env("NEKOS_ORDER").as_deref().map(str::trim) {
            None | Some("") | Some("shuffle") => OrderMode::Shuffle,
            Some("name") => OrderMode::Name,
            Some(o) => {
                eprintln!("viewer: ignoring NEKOS_ORDER={o:?}");
                OrderMode::Shuffle
            }
        };
        let scale = match env("NEKOS_SCALE") {
            None => ScaleMode::Fit,
            Some(s) if s.trim().is_empty() => ScaleMode::Fit,
            Some(s) => ScaleMode::parse(&s).unwrap_or_else(|| {
                eprintln!("viewer: ignoring NEKOS_SCALE={s:?}");
                ScaleMode::Fit
            }),
        };
        let seed = match env("NEKOS_SEED") {
            Some(s) if !s.trim().is_empty() => seed_from_str(&s),
            _ => boottime_nanos(),
        };
        Ok(Config {
            dir: dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR)),
            interval: Duration::from_secs_f64(interval),
            order,
            scale,
            seed,
        })
    }
}

/// Photo candidates in `dir`, sorted by file name. Metadata files that ship next to
/// the photos (licenses, checksums, notes) are left out; anything else is tried and
/// skipped with a log line if it does not decode.
pub fn list_photos(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') || !path.is_file() {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        let meta = ["license", "md", "txt", "sha256", "sums"];
        if lower.starts_with("sha256sums")
            || lower
                .rsplit_once('.')
                .is_some_and(|(_, ext)| meta.contains(&ext))
        {
            continue;
        }
        v.push(path);
    }
    v.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_and_env() {
        let c = Config::parse(&[], env(&[("NEKOS_SEED", "7")])).unwrap();
        assert_eq!(c.dir, PathBuf::from(DEFAULT_DIR));
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.order, OrderMode::Shuffle);
        assert_eq!(c.scale, ScaleMode::Fit);
        assert_eq!(c.seed, 7);
        let c = Config::parse(
            &["/tmp/x".into()],
            env(&[
                ("NEKOS_INTERVAL", "0.5"),
                ("NEKOS_ORDER", "name"),
                ("NEKOS_SCALE", "fill"),
            ]),
        )
        .unwrap();
        assert_eq!(c.dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.interval, Duration::from_millis(500));
        assert_eq!(c.order, OrderMode::Name);
        assert_eq!(c.scale, ScaleMode::Fill);
        let c = Config::parse(
            &[],
            env(&[("NEKOS_INTERVAL", "soon"), ("NEKOS_SCALE", "zoom")]),
        )
        .unwrap();
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.scale, ScaleMode::Fit);
        assert!(Config::parse(&["-x".into()], env(&[])).is_err());
    }

    #[test]
    fn lists_photos_sorted_without_metadata() {
        let d = std::env::temp_dir().join(format!("nekos-list-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for n in [
            "b.jpg",
            "a.png",
            "a.png.license",
            "SHA256SUMS",
            "SOURCES.md",
            ".hidden",
            "c.gif",
        ] {
            std::fs::write(d.join(n), b"x").unwrap();
        }
        let names: Vec<String> = list_photos(&d)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(names, vec!["a.png", "b.jpg", "c.gif"]);
    }
}
