//! The `nekos.*` kernel command line options. Pure: no I/O.
//!
//! We read /proc/cmdline ourselves instead of relying on what the kernel
//! passes to init as environment and argv, because the kernel only hands over
//! parameters it did not recognise and mangles quoting. Tokenisation follows
//! the kernel's own rule: whitespace separates parameters, and a double quote
//! toggles quoting (so both `nekos.service="/bin/foo --bar"` and
//! `"nekos.service=/bin/foo --bar"` work). As the kernel does for module
//! parameters, `-` and `_` are equivalent in option names.
//!
//! Every problem becomes a warning string and the option is ignored: a typo on
//! the command line must never stop the machine from booting.

use std::collections::BTreeMap;

use crate::words;

/// Defaults, also quoted in init/README.md.
pub const DEFAULT_DISPLAY_WAIT_MS: u64 = 5000;
/// Longer waits are almost certainly typos; cap so boot cannot hang on them.
pub const MAX_DISPLAY_WAIT_MS: u64 = 600_000;
/// How long stboot (stage 1) keeps retrying before it reboots.
pub const DEFAULT_STBOOT_DEADLINE_S: u64 = 120;
pub const MAX_STBOOT_DEADLINE_S: u64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootFlow {
    /// Booted by the firmware (the default; also when nothing says otherwise).
    Firmware,
    /// Started by stboot through kexec (`nekos.bootflow=stboot`, which the
    /// host tooling puts into the signed manifest cmdline).
    Stboot,
}

impl BootFlow {
    pub fn word(self) -> &'static str {
        match self {
            BootFlow::Firmware => "firmware",
            BootFlow::Stboot => "stboot",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayMode {
    Auto,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    /// The option's word, as services get it in NEKOS_LOGLEVEL.
    pub fn word(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// argv of each `nekos.service=`, in command line order.
    pub services: Vec<Vec<String>>,
    pub shell: bool,
    pub display: DisplayMode,
    pub display_wait_ms: u64,
    pub loglevel: LogLevel,
    /// NEKOS_* variables for the compositor/viewer (BTreeMap: deterministic
    /// order and no random hasher seed at startup).
    pub viewer_env: BTreeMap<&'static str, String>,
    pub bootflow: BootFlow,
    pub stboot_deadline_s: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            services: Vec::new(),
            shell: true,
            display: DisplayMode::Auto,
            display_wait_ms: DEFAULT_DISPLAY_WAIT_MS,
            loglevel: LogLevel::Info,
            viewer_env: BTreeMap::new(),
            bootflow: BootFlow::Firmware,
            stboot_deadline_s: DEFAULT_STBOOT_DEADLINE_S,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub config: Config,
    /// Human-readable problems; the caller prefixes `nekos: warning: `.
    pub warnings: Vec<String>,
}

/// The options we know, for the "unknown option" warning.
pub const KNOWN: &[&str] = &[
    "nekos.service",
    "nekos.shell",
    "nekos.display",
    "nekos.display_wait_ms",
    "nekos.loglevel",
    "nekos.seed",
    "nekos.interval",
    "nekos.order",
    "nekos.scale",
    "nekos.bootflow",
    "nekos.stboot_deadline",
];

/// Split a command line into parameters the way the kernel does: whitespace
/// outside double quotes separates, the quote characters themselves vanish.
pub fn tokenize(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut present = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                present = true;
            }
            c if c.is_whitespace() && !quoted => {
                if present {
                    out.push(std::mem::take(&mut cur));
                    present = false;
                }
            }
            c => {
                cur.push(c);
                present = true;
            }
        }
    }
    if present {
        out.push(cur);
    }
    out
}

pub fn parse(cmdline: &str) -> Parsed {
    let mut config = Config::default();
    let mut warnings = Vec::new();
    for token in tokenize(cmdline) {
        let (raw_key, value) = match token.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (token.as_str(), None),
        };
        if !raw_key.starts_with("nekos.") {
            continue; // not ours: kernel or other userspace parameters
        }
        let key = raw_key.replace('-', "_");
        let Some(value) = value else {
            warnings.push(format!(
                "{raw_key}: missing value (expected {raw_key}=<value>); ignored"
            ));
            continue;
        };
        if let Err(w) = apply(&mut config, &key, value) {
            warnings.push(format!("{raw_key}={value}: {w}; ignored"));
        }
    }
    Parsed { config, warnings }
}

/// Apply one option; the error says what was expected.
fn apply(config: &mut Config, key: &str, value: &str) -> Result<(), String> {
    match key {
        "nekos.service" => {
            let argv = words::split(value).map_err(|e| format!("expected a command line ({e})"))?;
            let Some(first) = argv.first() else {
                return Err("expected a program path and arguments, got nothing".into());
            };
            if first.is_empty() {
                return Err("expected a program path, got an empty one".into());
            }
            config.services.push(argv);
        }
        "nekos.shell" => {
            config.shell = match value {
                "on" => true,
                "off" => false,
                _ => return Err("expected on or off".into()),
            }
        }
        "nekos.display" => {
            config.display = match value {
                "auto" => DisplayMode::Auto,
                "off" => DisplayMode::Off,
                _ => return Err("expected auto or off".into()),
            }
        }
        "nekos.display_wait_ms" => {
            config.display_wait_ms = match value.parse::<u64>() {
                Ok(ms) if ms <= MAX_DISPLAY_WAIT_MS => ms,
                _ => {
                    return Err(format!(
                        "expected a whole number of milliseconds from 0 to {MAX_DISPLAY_WAIT_MS}"
                    ));
                }
            }
        }
        "nekos.loglevel" => {
            config.loglevel = match value {
                "error" => LogLevel::Error,
                "warn" => LogLevel::Warn,
                "info" => LogLevel::Info,
                "debug" => LogLevel::Debug,
                _ => return Err("expected error, warn, info or debug".into()),
            }
        }
        "nekos.seed" => {
            value
                .parse::<u64>()
                .map_err(|_| "expected an unsigned 64-bit integer".to_string())?;
            config.viewer_env.insert("NEKOS_SEED", value.to_string());
        }
        "nekos.interval" => {
            match value.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 && !value.starts_with('+') => {}
                _ => return Err("expected a positive number of seconds, e.g. 5 or 2.5".into()),
            }
            config
                .viewer_env
                .insert("NEKOS_INTERVAL", value.to_string());
        }
        "nekos.order" => {
            if !matches!(value, "shuffle" | "name") {
                return Err("expected shuffle or name".into());
            }
            config.viewer_env.insert("NEKOS_ORDER", value.to_string());
        }
        "nekos.scale" => {
            if !matches!(value, "fit" | "fill" | "actual") {
                return Err("expected fit, fill or actual".into());
            }
            config.viewer_env.insert("NEKOS_SCALE", value.to_string());
        }
        "nekos.bootflow" => {
            config.bootflow = match value {
                "firmware" => BootFlow::Firmware,
                "stboot" => BootFlow::Stboot,
                _ => return Err("expected firmware or stboot".into()),
            }
        }
        "nekos.stboot_deadline" => {
            config.stboot_deadline_s = match value.parse::<u64>() {
                Ok(s) if s <= MAX_STBOOT_DEADLINE_S => s,
                _ => {
                    return Err(format!(
                        "expected a whole number of seconds from 0 to {MAX_STBOOT_DEADLINE_S}"
                    ));
                }
            }
        }
        _ => {
            return Err(format!("unknown option (known: {})", KNOWN.join(", ")));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tokenize_like_the_kernel() {
        assert_eq!(
            tokenize("console=ttyS0  quiet\tnekos.service=\"/bin/foo --bar\" x\n"),
            [
                "console=ttyS0",
                "quiet",
                "nekos.service=/bin/foo --bar",
                "x"
            ]
        );
        assert_eq!(
            tokenize("\"nekos.service=/bin/a b\""),
            ["nekos.service=/bin/a b"]
        );
        assert_eq!(tokenize("a=\"\""), ["a="]);
        assert!(tokenize("").is_empty());
        // Unterminated quote: the rest is one parameter, as in the kernel.
        assert_eq!(tokenize("a \"b c"), ["a", "b c"]);
    }

    #[test]
    fn defaults() {
        let p = parse("console=ttyS0 root=/dev/sda quiet -- foo");
        assert_eq!(p.config, Config::default());
        assert!(p.warnings.is_empty());
        assert!(p.config.shell);
        assert_eq!(p.config.display, DisplayMode::Auto);
        assert_eq!(p.config.display_wait_ms, 5000);
    }

    #[test]
    fn services_repeat_and_keep_arguments() {
        let p = parse(
            "nekos.service=/bin/crashloop nekos.service=\"/bin/foo --bar 'a b'\" console=ttyS0",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(
            p.config.services,
            vec![
                vec!["/bin/crashloop".to_string()],
                vec![
                    "/bin/foo".to_string(),
                    "--bar".to_string(),
                    "a b".to_string()
                ]
            ]
        );
    }

    #[test]
    fn bad_service_values_warn() {
        for bad in [
            "nekos.service=",
            "nekos.service=\"  \"",
            "nekos.service=\"'x\"",
            "nekos.service=''",
        ] {
            let p = parse(bad);
            assert!(p.config.services.is_empty(), "{bad}");
            assert_eq!(p.warnings.len(), 1, "{bad}");
            assert!(
                p.warnings[0].starts_with("nekos.service="),
                "{}",
                p.warnings[0]
            );
        }
    }

    #[test]
    fn simple_options() {
        let p = parse(
            "nekos.shell=off nekos.display=off nekos.display_wait_ms=250 nekos.loglevel=debug",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert!(!p.config.shell);
        assert_eq!(p.config.display, DisplayMode::Off);
        assert_eq!(p.config.display_wait_ms, 250);
        assert_eq!(p.config.loglevel, LogLevel::Debug);
        for word in ["error", "warn", "info", "debug"] {
            let p = parse(&format!("nekos.loglevel={word}"));
            assert_eq!(p.config.loglevel.word(), word);
        }
    }

    #[test]
    fn dash_and_underscore_are_equal() {
        let p = parse("nekos.display-wait-ms=7");
        assert!(p.warnings.is_empty());
        assert_eq!(p.config.display_wait_ms, 7);
    }

    #[test]
    fn last_one_wins() {
        let p = parse("nekos.shell=off nekos.shell=on nekos.seed=1 nekos.seed=2");
        assert!(p.config.shell);
        assert_eq!(p.config.viewer_env["NEKOS_SEED"], "2");
    }

    #[test]
    fn viewer_env() {
        let p = parse(
            "nekos.seed=18446744073709551615 nekos.interval=2.5 nekos.order=name nekos.scale=fill",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let env: Vec<_> = p
            .config
            .viewer_env
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("NEKOS_INTERVAL", "2.5"),
                ("NEKOS_ORDER", "name"),
                ("NEKOS_SCALE", "fill"),
                ("NEKOS_SEED", "18446744073709551615"),
            ]
        );
    }

    #[test]
    fn malformed_values_warn_and_are_ignored() {
        let cases = [
            ("nekos.shell=maybe", "expected on or off"),
            ("nekos.display=on", "expected auto or off"),
            ("nekos.display_wait_ms=-1", "milliseconds"),
            ("nekos.display_wait_ms=999999999", "milliseconds"),
            (
                "nekos.loglevel=trace",
                "expected error, warn, info or debug",
            ),
            ("nekos.seed=-3", "unsigned 64-bit"),
            ("nekos.seed=18446744073709551616", "unsigned 64-bit"),
            ("nekos.interval=0", "positive number"),
            ("nekos.interval=-1", "positive number"),
            ("nekos.interval=nan", "positive number"),
            ("nekos.interval=inf", "positive number"),
            ("nekos.interval=abc", "positive number"),
            ("nekos.order=random", "shuffle or name"),
            ("nekos.scale=big", "expected fit, fill or actual"),
        ];
        for (arg, expected) in cases {
            let p = parse(arg);
            assert_eq!(p.warnings.len(), 1, "{arg}");
            assert!(p.warnings[0].starts_with(arg), "{}", p.warnings[0]);
            assert!(p.warnings[0].contains(expected), "{}", p.warnings[0]);
            assert!(p.warnings[0].ends_with("; ignored"), "{}", p.warnings[0]);
            let mut defaults = Config::default();
            defaults.viewer_env.clear();
            assert_eq!(p.config, defaults, "{arg}");
        }
    }

    #[test]
    fn unknown_and_valueless_options_warn() {
        let p = parse("nekos.foo=1 nekos.shell nekos. nekosx=1 nekos");
        assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
        assert!(p.warnings[0].starts_with("nekos.foo=1: unknown option (known: nekos.service"));
        assert!(p.warnings[1].starts_with("nekos.shell: missing value"));
        assert!(p.warnings[2].starts_with("nekos.: missing value"));
    }

    #[test]
    fn bootflow_and_stboot_deadline() {
        let p = parse("nekos.bootflow=stboot nekos.stboot-deadline=30");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.config.bootflow, BootFlow::Stboot);
        assert_eq!(p.config.bootflow.word(), "stboot");
        assert_eq!(p.config.stboot_deadline_s, 30);
        assert_eq!(Config::default().bootflow.word(), "firmware");
        assert_eq!(Config::default().stboot_deadline_s, 120);
        let p = parse("nekos.bootflow=pxe nekos.stboot_deadline=3601");
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("expected firmware or stboot"));
        assert!(p.warnings[1].contains("seconds from 0 to 3600"));
        assert_eq!(p.config, Config::default());
    }

    #[test]
    fn trailing_newline_of_proc_cmdline() {
        let p = parse("nekos.scale=fit\n");
        assert!(p.warnings.is_empty());
        assert_eq!(p.config.viewer_env["NEKOS_SCALE"], "fit");
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_nekos_like_input(
            parts in proptest::collection::vec(
                ("(nekos\\.)?[a-z_-]{0,14}", proptest::option::of("[ -~]{0,12}")), 0..8)
        ) {
            let line: String = parts
                .iter()
                .map(|(k, v)| match v { Some(v) => format!("{k}={v} "), None => format!("{k} ") })
                .collect();
            let p = parse(&line);
            // Every warning names an option and says it was ignored.
            for w in &p.warnings {
                prop_assert!(w.starts_with("nekos."), "{}", w);
                prop_assert!(w.ends_with("ignored"), "{}", w);
            }
        }

        #[test]
        fn tokens_have_no_unquoted_whitespace_split(words in proptest::collection::vec("[a-z=.]{1,8}", 0..6)) {
            let line = words.join(" ");
            prop_assert_eq!(tokenize(&line), words);
        }
    }
}
