//! Command line and environment of the production binary.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: nekos-compositor [options] [-- viewer-args...]

  --viewer PATH        viewer to start (default $NEKOS_VIEWER or /bin/viewer)
  --drm-device PATH    DRM device (default $NEKOS_DRM_DEVICE or /dev/dri/card0)
  --timeout-ms MS      give up after MS milliseconds (exit status 124)
  -h, --help           this text

The viewer gets WAYLAND_SOCKET and the compositor's environment. The compositor
exits with the viewer's exit status; SIGTERM/SIGINT stop both cleanly (status 0).
Prints 'nekos: first frame after <N> ms' (N = CLOCK_BOOTTIME ms) once the first
client frame is on screen.";

#[derive(Clone, Debug)]
pub struct Args {
    pub help: bool,
    pub viewer: PathBuf,
    pub viewer_args: Vec<String>,
    pub drm_device: PathBuf,
    pub timeout_ms: Option<u64>,
}

impl Args {
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut a = Args {
            help: false,
            viewer: std::env::var_os("NEKOS_VIEWER")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/bin/viewer")),
            viewer_args: Vec::new(),
            drm_device: std::env::var_os("NEKOS_DRM_DEVICE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/dev/dri/card0")),
            timeout_ms: None,
        };
        while let Some(arg) = it.next() {
            let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "-h" | "--help" => a.help = true,
                "--viewer" => a.viewer = PathBuf::from(val("--viewer")?),
                "--drm-device" => a.drm_device = PathBuf::from(val("--drm-device")?),
                "--timeout-ms" => {
                    a.timeout_ms = Some(
                        val("--timeout-ms")?
                            .parse()
                            .map_err(|_| "bad --timeout-ms")?,
                    );
                }
                "--" => {
                    a.viewer_args.extend(it.by_ref());
                }
                other => return Err(format!("unknown argument {other:?} (see --help)")),
            }
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(v: &[&str]) -> Result<Args, String> {
        Args::parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn viewer_and_its_args() {
        let a = p(&[
            "--drm-device",
            "/dev/dri/card1",
            "--viewer",
            "v",
            "--timeout-ms",
            "5",
            "--",
            "d",
            "-x",
        ])
        .unwrap();
        assert_eq!(a.drm_device, PathBuf::from("/dev/dri/card1"));
        assert_eq!(a.viewer, PathBuf::from("v"));
        assert_eq!(a.viewer_args, vec!["d", "-x"]);
        assert_eq!(a.timeout_ms, Some(5));
    }

    #[test]
    fn errors() {
        assert!(p(&["--timeout-ms", "x"]).is_err());
        assert!(p(&["--viewer"]).is_err());
        assert!(p(&["--bogus"]).is_err());
        // The test-only flags are gone from the production binary.
        assert!(p(&["--headless", "64x64"]).is_err());
        assert!(p(&["--keys", "106"]).is_err());
        assert!(p(&[]).unwrap().viewer_args.is_empty());
    }
}
