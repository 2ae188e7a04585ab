//! PKCS#11 URIs (RFC 7512), read strictly: `pkcs11:token=nekos;object=db?module-path=/usr/lib/softhsm/libsofthsm2.so`.
//!
//! Path attributes (`;`-separated): `token`, `manufacturer`, `serial`, `model`, `object`,
//! `type`, `id`, `slot-id`. Query attributes (`&`-separated): `module-path`, `pin-source`.
//! Values are percent-decoded (`id` is raw bytes, e.g. `id=%01`; every other value must be
//! UTF-8). Refused with a reason: unknown attributes (a typo would otherwise silently widen
//! the match to another key), an attribute given twice, malformed percent escapes, and
//! `pin-value` — a PIN inside the URI ends up in shell history, `ps` output and logs; the PIN
//! comes from `pin-source=FILE`, `$NEKOS_PKCS11_PIN` or a prompt instead. `module-name` is
//! refused too: where a module lives by name differs between systems, so the URI names the
//! file (`module-path`) or `$NEKOS_PKCS11_MODULE` does.

use anyhow::{Result, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use std::fmt;
use std::path::PathBuf;

/// The object class a URI asks for (`type=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    Private,
    Public,
    Cert,
    SecretKey,
    Data,
}

impl ObjectType {
    fn parse(v: &str) -> Result<ObjectType> {
        Ok(match v {
            "private" => ObjectType::Private,
            "public" => ObjectType::Public,
            "cert" => ObjectType::Cert,
            "secret-key" => ObjectType::SecretKey,
            "data" => ObjectType::Data,
            _ => bail!("type={v:?}: expected private, public, cert, secret-key or data"),
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }
}

/// A parsed PKCS#11 URI. `Display` writes it back (normalised, percent-encoded); it never
/// holds a PIN, so it is safe to print.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub object: Option<String>,
    pub object_type: Option<ObjectType>,
    pub id: Option<Vec<u8>>,
    pub slot_id: Option<u64>,
    pub module_path: Option<PathBuf>,
    pub pin_source: Option<PathBuf>,
}

/// Whether a key argument names a token key rather than a file.
pub fn is_pkcs11_uri(s: &str) -> bool {
    s.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("pkcs11:"))
}

/// `s` with the value of every `pin-value` attribute replaced, for error messages about
/// URIs that did not parse (a parsed [`Pkcs11Uri`] never holds a PIN).
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("pin-value=") {
        let (head, tail) = rest.split_at(i + "pin-value=".len());
        out.push_str(head);
        out.push_str("REDACTED");
        let end = tail.find(['&', ';', '?']).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn decode(attr: &str, raw: &str) -> Result<Vec<u8>> {
    // percent_decode passes a malformed escape through; RFC 7512 values are pchars, so a
    // `%` not followed by two hex digits is an error, as is a raw character outside pchar.
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                b.len() >= i + 3 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                bail!("{attr}: malformed percent escape at byte {i} (expected %XX)");
            }
            i += 3;
            continue;
        }
        let c = b[i];
        let allowed = c.is_ascii_alphanumeric() || b"-._~!$'()*+,:@/|".contains(&c);
        if !allowed {
            bail!(
                "{attr}: character {:?} must be percent-encoded",
                char::from(c)
            );
        }
        i += 1;
    }
    Ok(percent_decode_str(raw).collect())
}

fn text(attr: &str, raw: &str) -> Result<String> {
    String::from_utf8(decode(attr, raw)?).map_err(|_| anyhow::anyhow!("{attr}: not UTF-8"))
}

fn set<T>(slot: &mut Option<T>, attr: &str, v: T) -> Result<()> {
    if slot.is_some() {
        bail!("{attr} is given twice");
    }
    *slot = Some(v);
    Ok(())
}

impl Pkcs11Uri {
    /// Parses `s`; errors name the (redacted) URI and what was expected.
    pub fn parse(s: &str) -> Result<Pkcs11Uri> {
        Self::parse_inner(s).map_err(|e| anyhow::anyhow!("PKCS#11 URI {:?}: {e:#}", redact(s)))
    }

    fn parse_inner(s: &str) -> Result<Pkcs11Uri> {
        if !is_pkcs11_uri(s) {
            bail!("expected a URI starting with \"pkcs11:\" (RFC 7512)");
        }
        let body = &s[7..];
        if body.contains('#') {
            bail!("a fragment (#) is not allowed");
        }
        let (path, query) = match body.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (body, None),
        };
        let mut u = Pkcs11Uri::default();
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let Some((name, raw)) = part.split_once('=') else {
                bail!("path attribute {part:?} has no '='");
            };
            match name {
                "token" => set(&mut u.token, name, text(name, raw)?)?,
                "manufacturer" => set(&mut u.manufacturer, name, text(name, raw)?)?,
                "serial" => set(&mut u.serial, name, text(name, raw)?)?,
                "model" => set(&mut u.model, name, text(name, raw)?)?,
                "object" => set(&mut u.object, name, text(name, raw)?)?,
                "id" => set(&mut u.id, name, decode(name, raw)?)?,
                "type" => set(
                    &mut u.object_type,
                    name,
                    ObjectType::parse(&text(name, raw)?)?,
                )?,
                "slot-id" => {
                    let v = text(name, raw)?;
                    let n = v
                        .parse::<u64>()
                        .map_err(|_| anyhow::anyhow!("slot-id={v:?}: expected a decimal number"))?;
                    set(&mut u.slot_id, name, n)?
                }
                "pin-value" | "pin-source" | "module-path" | "module-name" => {
                    bail!("{name} is a query attribute: write it after '?'")
                }
                _ => bail!(
                    "unknown path attribute {name:?} (known: token, manufacturer, serial, model, object, type, id, slot-id)"
                ),
            }
        }
        for part in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let Some((name, raw)) = part.split_once('=') else {
                bail!("query attribute {part:?} has no '='");
            };
            match name {
                "module-path" => set(&mut u.module_path, name, PathBuf::from(text(name, raw)?))?,
                "pin-source" => {
                    let v = text(name, raw)?;
                    let path = v.strip_prefix("file:").unwrap_or(&v);
                    if path.starts_with('|') {
                        bail!(
                            "pin-source={v:?}: running a program for the PIN is not supported; name a file"
                        );
                    }
                    set(&mut u.pin_source, name, PathBuf::from(path))?
                }
                "pin-value" => bail!(
                    "pin-value is refused: a PIN in the URI ends up in shell history, process lists and logs; set NEKOS_PKCS11_PIN, use pin-source=FILE, or type it at the prompt"
                ),
                "module-name" => bail!(
                    "module-name is not supported (module locations differ between systems): give module-path=/path/to/module.so or set NEKOS_PKCS11_MODULE"
                ),
                _ => bail!("unknown query attribute {name:?} (known: module-path, pin-source)"),
            }
        }
        if u.object.is_none() && u.id.is_none() {
            bail!("name the key with object=LABEL or id=%XX");
        }
        Ok(u)
    }
}

/// What RFC 7512 lets stand unescaped in a value (unreserved plus a few pchars); the rest,
/// including `;`, `?`, `&`, `=` and `%`, is escaped.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'@')
    .remove(b'/');

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pkcs11:")?;
        let mut path: Vec<String> = Vec::new();
        let mut push = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                path.push(format!("{name}={}", utf8_percent_encode(v, VALUE)));
            }
        };
        push("token", &self.token);
        push("manufacturer", &self.manufacturer);
        push("serial", &self.serial);
        push("model", &self.model);
        push("object", &self.object);
        if let Some(t) = self.object_type {
            path.push(format!("type={}", t.as_str()));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02X}")).collect();
            path.push(format!("id={hex}"));
        }
        if let Some(n) = self.slot_id {
            path.push(format!("slot-id={n}"));
        }
        f.write_str(&path.join(";"))?;
        let mut query: Vec<String> = Vec::new();
        for (name, v) in [
            ("module-path", &self.module_path),
            ("pin-source", &self.pin_source),
        ] {
            if let Some(p) = v {
                query.push(format!(
                    "{name}={}",
                    utf8_percent_encode(&p.to_string_lossy(), VALUE)
                ));
            }
        }
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_readme_example() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=nekos;object=db;id=%01%ff;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("nekos"));
        assert_eq!(u.object.as_deref(), Some("db"));
        assert_eq!(u.id.as_deref(), Some(&[0x01, 0xff][..]));
        assert_eq!(u.object_type, Some(ObjectType::Private));
        assert_eq!(
            u.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert_eq!(
            u.pin_source.as_deref(),
            Some(std::path::Path::new("/run/pin"))
        );
    }

    #[test]
    fn percent_decoding() {
        let u = Pkcs11Uri::parse("pkcs11:token=My%20Token;object=a%3Bb").unwrap();
        assert_eq!(u.token.as_deref(), Some("My Token"));
        assert_eq!(u.object.as_deref(), Some("a;b"));
        for bad in ["pkcs11:object=%2", "pkcs11:object=%zz", "pkcs11:object=a b"] {
            let e = Pkcs11Uri::parse(bad).unwrap_err().to_string();
            assert!(e.contains("object"), "{bad}: {e}");
        }
        let e = Pkcs11Uri::parse("pkcs11:object=%ff")
            .unwrap_err()
            .to_string();
        assert!(e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn refuses_pin_value_and_redacts_it() {
        let e = Pkcs11Uri::parse("pkcs11:object=db?pin-value=123456&module-path=/m.so")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pin-value is refused"), "{e}");
        assert!(e.contains("NEKOS_PKCS11_PIN"), "{e}");
        assert!(!e.contains("123456"), "{e}");
        assert!(e.contains("pin-value=REDACTED&module-path"), "{e}");
        assert_eq!(
            redact("pkcs11:a=b?pin-value=9"),
            "pkcs11:a=b?pin-value=REDACTED"
        );
    }

    #[test]
    fn strict() {
        for (uri, want) in [
            ("file:db.key", "starting with \"pkcs11:\""),
            ("pkcs11:tokn=x;object=db", "unknown path attribute \"tokn\""),
            ("pkcs11:object=db;object=kek", "object is given twice"),
            ("pkcs11:object=db?module-nam=x", "unknown query attribute"),
            (
                "pkcs11:object=db?module-name=softhsm2",
                "module-name is not supported",
            ),
            ("pkcs11:object=db;module-path=/x", "query attribute"),
            ("pkcs11:token=nekos", "name the key"),
            ("pkcs11:object=db;type=key", "expected private"),
            ("pkcs11:object=db;slot-id=x", "decimal"),
            ("pkcs11:object=db?pin-source=|cat", "not supported"),
            ("pkcs11:object=db#frag", "fragment"),
            ("pkcs11:object", "no '='"),
        ] {
            let e = Pkcs11Uri::parse(uri).unwrap_err().to_string();
            assert!(e.contains(want), "{uri}: {e}");
        }
        assert!(is_pkcs11_uri("PKCS11:object=db"));
        assert!(!is_pkcs11_uri("pkcs1"));
    }

    fn value() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ -~äö€]{1,12}").unwrap()
    }

    proptest! {
        /// Display percent-encodes so that parsing gives back the same attributes.
        #[test]
        fn display_round_trips(
            token in proptest::option::of(value()),
            object in value(),
            id in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..8)),
            module in proptest::option::of("/[a-z0-9/ .]{1,20}"),
        ) {
            let u = Pkcs11Uri {
                token,
                object: Some(object),
                id,
                module_path: module.map(PathBuf::from),
                ..Pkcs11Uri::default()
            };
            let back = Pkcs11Uri::parse(&u.to_string()).unwrap();
            prop_assert_eq!(back, u);
        }

        /// Whatever the input, parsing returns (no panic) and an error never repeats a PIN.
        #[test]
        fn errors_never_show_the_pin(s in "pkcs11:[ -~]{0,40}", pin in "[0-9]{6,8}") {
            let uri = format!("{s}?pin-value={pin}");
            if let Err(e) = Pkcs11Uri::parse(&uri) {
                let shown = format!("pin-value={pin}");
                prop_assert!(!e.to_string().contains(&shown));
            }
        }
    }
}
