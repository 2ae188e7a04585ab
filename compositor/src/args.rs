//! Command line and environment.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: nekos-compositor [options] [-- viewer-args...]

  --viewer PATH        viewer to start (default $NEKOS_VIEWER or /bin/viewer)
  --drm-device PATH    DRM device (default $NEKOS_DRM_DEVICE or /dev/dri/card0)
  --headless WxH       render into memory instead of DRM (no GPU needed)
  --screenshot FILE    headless: write the frame as PNG, then exit
  --frames N           headless: exit after the N-th client frame is drawn (default 1)
  --keys C1,C2,...     headless: after the first frame, type these evdev key codes
  --key-gap-ms MS      pause before each typed key (default 500)
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
    pub headless: Option<(u32, u32)>,
    pub screenshot: Option<PathBuf>,
    pub frames: u64,
    pub keys: Vec<u16>,
    pub key_gap_ms: u64,
    pub timeout_ms: Option<u64>,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("bad size {s:?}, want WxH"))?;
    let w: u32 = w.parse().map_err(|_| format!("bad width in {s:?}"))?;
    let h: u32 = h.parse().map_err(|_| format!("bad height in {s:?}"))?;
    if w == 0 || h == 0 || w > 16384 || h > 16384 {
        return Err(format!("size {s:?} out of range"));
    }
    Ok((w, h))
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
            headless: None,
            screenshot: None,
            frames: 1,
            keys: Vec::new(),
            key_gap_ms: 500,
            timeout_ms: None,
        };
        let mut frames_given = false;
        while let Some(arg) = it.next() {
            let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "-h" | "--help" => a.help = true,
                "--viewer" => a.viewer = PathBuf::from(val("--viewer")?),
                "--drm-device" => a.drm_device = PathBuf::from(val("--drm-device")?),
                "--headless" => a.headless = Some(parse_size(&val("--headless")?)?),
                "--screenshot" => a.screenshot = Some(PathBuf::from(val("--screenshot")?)),
                "--frames" => {
                    a.frames = val("--frames")?.parse().map_err(|_| "bad --frames")?;
                    frames_given = true;
                }
                "--keys" => {
                    for k in val("--keys")?.split(',').filter(|k| !k.is_empty()) {
                        a.keys.push(
                            k.trim()
                                .parse()
                                .map_err(|_| format!("bad key code {k:?}"))?,
                        );
                    }
                }
                "--key-gap-ms" => {
                    a.key_gap_ms = val("--key-gap-ms")?
                        .parse()
                        .map_err(|_| "bad --key-gap-ms")?;
                }
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
        if a.headless.is_none() {
            // DRM mode runs until the viewer exits.
            a.frames = 0;
        } else if !frames_given && a.screenshot.is_none() {
            a.frames = 0;
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
    fn headless_screenshot() {
        let a = p(&[
            "--headless",
            "640x480",
            "--screenshot",
            "/tmp/x.png",
            "--viewer",
            "v",
            "--",
            "d",
            "-x",
        ])
        .unwrap();
        assert_eq!(a.headless, Some((640, 480)));
        assert_eq!(a.frames, 1);
        assert_eq!(a.viewer, PathBuf::from("v"));
        assert_eq!(a.viewer_args, vec!["d", "-x"]);
        let a = p(&["--headless", "8x8", "--keys", "106,105", "--frames", "3"]).unwrap();
        assert_eq!(a.keys, vec![106, 105]);
        assert_eq!(a.frames, 3);
    }

    #[test]
    fn errors() {
        assert!(p(&["--headless", "0x5"]).is_err());
        assert!(p(&["--headless"]).is_err());
        assert!(p(&["--bogus"]).is_err());
        assert_eq!(p(&[]).unwrap().frames, 0);
    }
}
