//! `nekos-fuzz [--seconds N] [--parser NAME]… [--seed S] [--json] [--list]
//! [--replay FILE] [--out DIR]`: see lib.rs; `cargo nekos fuzz` runs this.
//!
//! Exit status: 0 no crash and no hang; 1 a crash or a hang (inputs saved);
//! 2 usage or setup error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nekos_fuzz::engine::{self, Config};
use nekos_fuzz::{summary, targets};

const USAGE: &str = "usage: nekos-fuzz [--seconds N] [--parser NAME]... [--seed S] [--json] [--list] [--replay FILE] [--out DIR]
  --seconds N     total fuzzing time, split evenly across the selected parsers (default 60)
  --parser NAME   fuzz only this parser (repeatable; default all, see --list)
  --seed S        seed of the mutation streams (default from the clock; printed)
  --json          print the summary as JSON on stdout (progress goes to stderr)
  --list          list the parsers and what each calls
  --replay FILE   run one saved input through the one --parser given
  --out DIR       where crashing/hanging inputs are saved (default target/nekos/fuzz)";

struct Args {
    seconds: f64,
    parsers: Vec<String>,
    seed: Option<u64>,
    json: bool,
    list: bool,
    replay: Option<PathBuf>,
    out: Option<PathBuf>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        seconds: 60.0,
        parsers: Vec::new(),
        seed: None,
        json: false,
        list: false,
        replay: None,
        out: None,
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--seconds" => {
                let v = value("--seconds")?;
                a.seconds = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--seconds: expected a positive number, got {v:?}"))?;
            }
            "--parser" => a.parsers.push(value("--parser")?),
            "--seed" => {
                let v = value("--seed")?;
                a.seed = Some(v.parse::<u64>().map_err(|_| {
                    format!("--seed: expected an unsigned 64-bit integer, got {v:?}")
                })?);
            }
            "--replay" => a.replay = Some(PathBuf::from(value("--replay")?)),
            "--out" => a.out = Some(PathBuf::from(value("--out")?)),
            "--json" => a.json = true,
            "--list" => a.list = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("nekos-fuzz: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("nekos-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

/// Ok(true): nothing found.
fn run(args: Args) -> Result<bool, String> {
    if args.list {
        for (name, about) in targets::TARGETS {
            println!("{name:<17} {about}");
        }
        return Ok(true);
    }
    let ws = targets::workspace();
    let names: Vec<String> = if args.parsers.is_empty() {
        targets::TARGETS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect()
    } else {
        args.parsers.clone()
    };
    if let Some(file) = &args.replay {
        let [name] = names.as_slice() else {
            return Err("--replay needs exactly one --parser".into());
        };
        let input = std::fs::read(file).map_err(|e| format!("--replay {}: {e}", file.display()))?;
        let t = targets::build(name, &ws)?;
        return match engine::replay(&t, &input) {
            Ok(outcome) => {
                println!("{name}: {outcome}");
                Ok(true)
            }
            Err(finding) => {
                println!("{name}: {finding}");
                Ok(false)
            }
        };
    }
    // Unknown names fail before any time is spent.
    for n in &names {
        if !targets::TARGETS.iter().any(|(t, _)| t == n) {
            targets::build(n, &ws)?;
        }
    }
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let per = args.seconds / names.len() as f64;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| ws.join("target/nekos/fuzz"));
    eprintln!(
        "nekos-fuzz: seed {seed} (repeat with --seed {seed}), {} parser(s), {per:.1} s each, findings to {}",
        names.len(),
        out.display()
    );
    let mut all = Vec::new();
    for name in &names {
        let t = targets::build(name, &ws)?;
        let cfg = Config {
            duration: Duration::from_secs_f64(per),
            max_inputs: None,
            seed,
            out: out.clone(),
        };
        let s = engine::fuzz(&t, &cfg)?;
        eprintln!(
            "nekos-fuzz: {:<17} {:>9} inputs {:>8.0}/s  {} crashes {} hangs  ({} seeds, {} outcomes)",
            s.name,
            s.inputs,
            s.per_second(),
            s.crashes,
            s.hangs,
            s.seeds,
            s.outcomes
        );
        all.push(s);
    }
    if args.json {
        print!("{}", summary::json(seed, per, &all));
    } else {
        print!("{}", summary::table(&all));
    }
    let found = all.iter().any(|s| s.crashes > 0 || s.hangs > 0);
    if found {
        eprintln!(
            "nekos-fuzz: findings saved under {}; replay one with --parser NAME --replay FILE",
            out.display()
        );
    }
    Ok(!found)
}
