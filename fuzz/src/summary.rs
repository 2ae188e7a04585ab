//! The closing table and the `--json` summary.

use crate::engine::Stats;

pub fn table(stats: &[Stats]) -> String {
    let mut out = format!(
        "{:<17} {:>10} {:>10} {:>8} {:>6} {:>9} {:>8} {:>7}\n",
        "parser", "inputs", "inputs/s", "accepted", "seeds", "outcomes", "crashes", "hangs"
    );
    for s in stats {
        out.push_str(&format!(
            "{:<17} {:>10} {:>10.0} {:>8} {:>6} {:>9} {:>8} {:>7}\n",
            s.name,
            s.inputs,
            s.per_second(),
            s.accepted,
            s.seeds,
            s.outcomes,
            s.crashes,
            s.hangs
        ));
    }
    let inputs: u64 = stats.iter().map(|s| s.inputs).sum();
    let crashes: u64 = stats.iter().map(|s| s.crashes).sum();
    let hangs: u64 = stats.iter().map(|s| s.hangs).sum();
    out.push_str(&format!(
        "{:<17} {:>10} {:>10} {:>8} {:>6} {:>9} {:>8} {:>7}\n",
        "total", inputs, "", "", "", "", crashes, hangs
    ));
    out
}

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn json(seed: u64, seconds_per_parser: f64, stats: &[Stats]) -> String {
    let parsers: Vec<String> = stats
        .iter()
        .map(|s| {
            let saved: Vec<String> = s
                .saved
                .iter()
                .map(|(p, what)| {
                    format!(
                        "{{\"path\":{},\"what\":{}}}",
                        string(&p.display().to_string()),
                        string(what)
                    )
                })
                .collect();
            format!(
                "{{\"name\":{},\"seeds\":{},\"inputs\":{},\"seconds\":{:.3},\"inputs_per_second\":{:.1},\"accepted\":{},\"outcomes\":{},\"corpus\":{},\"crashes\":{},\"hangs\":{},\"saved\":[{}]}}",
                string(&s.name),
                s.seeds,
                s.inputs,
                s.seconds,
                s.per_second(),
                s.accepted,
                s.outcomes,
                s.corpus,
                s.crashes,
                s.hangs,
                saved.join(",")
            )
        })
        .collect();
    format!(
        "{{\"seed\":{seed},\"seconds_per_parser\":{seconds_per_parser:.3},\"crashes\":{},\"hangs\":{},\"parsers\":[{}]}}\n",
        stats.iter().map(|s| s.crashes).sum::<u64>(),
        stats.iter().map(|s| s.hangs).sum::<u64>(),
        parsers.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_sums() {
        let s = Stats {
            name: "a\"b".into(),
            inputs: 10,
            seconds: 2.0,
            crashes: 1,
            saved: vec![("/x\\y".into(), "line\nbreak".into())],
            ..Stats::default()
        };
        let j = json(7, 2.0, &[s]);
        assert!(j.contains(r#""name":"a\"b""#), "{j}");
        assert!(
            j.contains(r#""path":"/x\\y","what":"line\u000abreak""#),
            "{j}"
        );
        assert!(j.contains(r#""inputs_per_second":5.0"#), "{j}");
        assert!(j.starts_with(r#"{"seed":7,"seconds_per_parser":2.000,"crashes":1,"hangs":0"#));
    }
}
