//! Just enough URL handling for stboot: `http(s)://host[:port]/path[?query]`,
//! and resolving a reference (the descriptor's `os_pkg_url`, a redirect's
//! `Location`) against the URL it came from, as RFC 3986 §5.2 does for the
//! cases that occur (absolute, scheme-relative, absolute-path, relative-path,
//! query-only). Pure: no I/O.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// Host name or IP literal, without brackets (IPv6 literals are
    /// bracketed again when printed).
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        let s = s.trim();
        let (scheme, rest) = if let Some(r) = strip_prefix_ci(s, "https://") {
            (Scheme::Https, r)
        } else if let Some(r) = strip_prefix_ci(s, "http://") {
            (Scheme::Http, r)
        } else {
            return Err(format!("{s:?}: not an http:// or https:// URL"));
        };
        // The fragment never goes to the server.
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i..).unwrap_or_default(),
            ),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!("{s:?}: user info in URLs is not supported"));
        }
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((h, after)) = v6.split_once(']') else {
                return Err(format!("{s:?}: unterminated IPv6 literal"));
            };
            let port = match after {
                "" => default_port,
                p => parse_port(p.strip_prefix(':').unwrap_or("x"), s)?,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p, s)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("{s:?}: no host"));
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{s:?}: invalid host"));
        }
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{s:?}: whitespace in path"));
        }
        Ok(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    /// Resolve `reference` against this URL.
    pub fn join(&self, reference: &str) -> Result<Url, String> {
        let r = reference.trim();
        if r.is_empty() {
            return Err("empty URL reference".to_string());
        }
        if let Some((scheme, _)) = r.split_once(':')
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !r.starts_with('/')
        {
            // Absolute (Url::parse rejects schemes other than http/https).
            return Url::parse(r);
        }
        if let Some(rest) = r.strip_prefix("//") {
            let scheme = match self.scheme {
                Scheme::Http => "http",
                Scheme::Https => "https",
            };
            return Url::parse(&format!("{scheme}://{rest}"));
        }
        let r = r.split('#').next().unwrap_or_default();
        let path = if r.starts_with('/') {
            r.to_string()
        } else if r.starts_with('?') {
            let base = self.path.split('?').next().unwrap_or("/");
            format!("{base}{r}")
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = match base.rfind('/') {
                Some(i) => base.get(..=i).unwrap_or("/"),
                None => "/",
            };
            format!("{dir}{r}")
        };
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (path, None),
        };
        let mut out = remove_dot_segments(&p);
        if let Some(q) = q {
            out.push('?');
            out.push_str(&q);
        }
        if out.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{reference:?}: whitespace in path"));
        }
        Ok(Url {
            path: out,
            ..self.clone()
        })
    }

    /// `host:port` as it goes into the Host header (port omitted when default).
    pub fn host_header(&self) -> String {
        let host = self.host_display();
        match (self.scheme, self.port) {
            (Scheme::Http, 80) | (Scheme::Https, 443) => host,
            (_, p) => format!("{host}:{p}"),
        }
    }

    fn host_display(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.host_header(), self.path)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

fn parse_port(p: &str, whole: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Ok(n),
        _ => Err(format!("{whole:?}: invalid port {p:?}")),
    }
}

/// RFC 3986 §5.2.4 on a path that starts with `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut s = String::from("/");
    s.push_str(&out.join("/"));
    if trailing_slash && !s.ends_with('/') {
        s.push('/');
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let u = Url::parse("https://10.0.2.2:8443/nekos.json").unwrap();
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.host, "10.0.2.2");
        assert_eq!(u.port, 8443);
        assert_eq!(u.path, "/nekos.json");
        assert_eq!(u.to_string(), "https://10.0.2.2:8443/nekos.json");
        let u = Url::parse("HTTP://Example.org").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("example.org", 80, "/")
        );
        assert_eq!(u.to_string(), "http://example.org/");
        let u = Url::parse("https://[::1]:99/a?b=c#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 99, "/a?b=c")
        );
        assert_eq!(u.to_string(), "https://[::1]:99/a?b=c");
        assert_eq!(Url::parse("https://h?x").unwrap().path, "/?x");
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "ftp://x/y",
            "https://",
            "https://:80/",
            "https://h:0/",
            "https://h:99999/",
            "https://h:8a/",
            "https://u@h/",
            "https://[::1/",
            "https://h/a b",
            "nekos.zip",
            "",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn join_references() {
        let base = Url::parse("https://10.0.2.2:8443/pkgs/v1/nekos.json?x=1").unwrap();
        let j = |r: &str| base.join(r).unwrap().to_string();
        assert_eq!(j("nekos.zip"), "https://10.0.2.2:8443/pkgs/v1/nekos.zip");
        assert_eq!(j("./nekos.zip"), "https://10.0.2.2:8443/pkgs/v1/nekos.zip");
        assert_eq!(j("../nekos.zip"), "https://10.0.2.2:8443/pkgs/nekos.zip");
        assert_eq!(
            j("../../../../nekos.zip"),
            "https://10.0.2.2:8443/nekos.zip"
        );
        assert_eq!(j("/other/p.zip"), "https://10.0.2.2:8443/other/p.zip");
        assert_eq!(j("?y=2"), "https://10.0.2.2:8443/pkgs/v1/nekos.json?y=2");
        assert_eq!(j("//mirror:9/p.zip"), "https://mirror:9/p.zip");
        assert_eq!(j("http://elsewhere/p.zip"), "http://elsewhere/p.zip");
        assert_eq!(j("sub/dir/"), "https://10.0.2.2:8443/pkgs/v1/sub/dir/");
        assert_eq!(j("a/.."), "https://10.0.2.2:8443/pkgs/v1/");
        assert!(base.join("").is_err());
        assert!(base.join("file:///etc/passwd").is_err());
        assert!(base.join("a b").is_err());
    }
}
