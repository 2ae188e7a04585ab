//! Go-compatible JSON: an encoder that writes exactly what Go's
//! `json.MarshalIndent(v, "", "  ")` writes for the flat structures of this crate, and
//! tolerant decoding helpers that behave like Go's `json.Unmarshal` (case-insensitive keys,
//! unknown fields ignored, `null` leaves the zero value, the last duplicate key wins).

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// Appends `s` as a JSON string literal, escaped exactly like Go's `encoding/json` with
/// HTML escaping on (the default of `json.Marshal`/`MarshalIndent`, Go ≥ 1.22).
pub fn push_go_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let v = c as u32;
                out.push_str("\\u");
                for shift in [12u32, 8, 4, 0] {
                    out.push(char::from(HEX[((v >> shift) & 0xf) as usize]));
                }
            }
            c if (c as u32) < 0x20 => {
                let v = c as u32;
                out.push_str("\\u00");
                out.push(char::from(HEX[((v >> 4) & 0xf) as usize]));
                out.push(char::from(HEX[(v & 0xf) as usize]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A value in a Go-style indented object.
pub enum GoValue<'a> {
    Int(i64),
    Str(&'a str),
    /// `null`
    Null,
    /// A list of strings: `null` when `None`, `[]` when empty, else one element per line.
    StrList(Option<Vec<String>>),
    /// A list of flat objects (each a list of key/value pairs): `null` when `None`.
    ObjList(Option<Vec<Vec<(&'a str, GoValue<'a>)>>>),
}

fn push_indent(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// A non-null array as Go's MarshalIndent writes it: `[]` when empty, else one element per
/// line at `level + 1`.
fn push_list<T>(
    out: &mut String,
    items: &[T],
    level: usize,
    mut push_item: impl FnMut(&mut String, &T, usize),
) {
    if items.is_empty() {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_indent(out, level + 1);
        push_item(out, item, level + 1);
    }
    push_indent(out, level);
    out.push(']');
}

fn push_value(out: &mut String, v: &GoValue<'_>, level: usize) {
    match v {
        GoValue::Int(i) => out.push_str(&i.to_string()),
        GoValue::Str(s) => push_go_string(out, s),
        GoValue::Null | GoValue::StrList(None) | GoValue::ObjList(None) => out.push_str("null"),
        GoValue::StrList(Some(items)) => {
            push_list(out, items, level, |out, item, _| push_go_string(out, item))
        }
        GoValue::ObjList(Some(items)) => push_list(out, items, level, |out, item, lvl| {
            push_object(out, item, lvl)
        }),
    }
}

fn push_object(out: &mut String, fields: &[(&str, GoValue<'_>)], level: usize) {
    if fields.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_indent(out, level + 1);
        push_go_string(out, key);
        out.push_str(": ");
        push_value(out, value, level + 1);
    }
    push_indent(out, level);
    out.push('}');
}

/// Encodes an object like `json.MarshalIndent(v, "", "  ")` (no trailing newline).
pub fn go_object(fields: &[(&str, GoValue<'_>)]) -> Vec<u8> {
    let mut out = String::new();
    push_object(&mut out, fields, 0);
    out.into_bytes()
}

/// A JSON object with its members in document order, duplicates kept.
pub struct OrderedObject(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = map.next_entry::<String, Value>()? {
                    v.push((k, val));
                }
                Ok(OrderedObject(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Decoding failure with the offending field named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub String);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

/// The object's members, as Go would see them for the given field names: for each field,
/// the value of the last member whose key equals the field name exactly or, failing an
/// exact match for that member, case-insensitively (Go folding). Unknown members are ignored.
pub struct Fields {
    members: Vec<(String, Value)>,
}

impl Fields {
    /// Parses `bytes` as one JSON object (surrounding whitespace allowed).
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, JsonError> {
        let obj: OrderedObject = serde_json::from_slice(bytes)
            .map_err(|e| JsonError(format!("{what}: not a JSON object: {e}")))?;
        Ok(Fields { members: obj.0 })
    }

    /// Builds from an already parsed value (must be an object).
    pub fn from_value(v: &Value, what: &str) -> Result<Self, JsonError> {
        match v {
            Value::Object(m) => Ok(Fields {
                members: m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            }),
            _ => Err(JsonError(format!("{what}: expected a JSON object"))),
        }
    }

    /// The value for field `name`; `None` if absent or `null` (Go leaves the zero value).
    ///
    /// Go assigns members in document order, so a later member matching the field
    /// (exactly or case-insensitively) overrides an earlier one.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let mut found = None;
        for (k, v) in &self.members {
            if k == name || go_fold_eq(k, name) {
                found = Some(v);
            }
        }
        match found {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        }
    }

    pub fn int(&self, name: &str, what: &str) -> Result<i64, JsonError> {
        match self.get(name) {
            None => Ok(0),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                JsonError(format!(
                    "{what}: field {name:?}: number {n} is not an integer"
                ))
            }),
            Some(other) => Err(JsonError(format!(
                "{what}: field {name:?}: expected a number, got {}",
                kind(other)
            ))),
        }
    }

    pub fn string(&self, name: &str, what: &str) -> Result<String, JsonError> {
        match self.get(name) {
            None => Ok(String::new()),
            Some(v) => as_string(v, &format!("{what}: field {name:?}")),
        }
    }

    pub fn opt_string(&self, name: &str, what: &str) -> Result<Option<String>, JsonError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => as_string(v, &format!("{what}: field {name:?}")).map(Some),
        }
    }

    /// An array (`null` or absent → `None`).
    pub fn array(&self, name: &str, what: &str) -> Result<Option<&Vec<Value>>, JsonError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(JsonError(format!(
                "{what}: field {name:?}: expected an array, got {}",
                kind(other)
            ))),
        }
    }

    /// A Go `[][]byte`: an array of standard padded base64 strings (`null` elements are
    /// empty). `null`, absent and `[]` all give an empty list.
    pub fn bytes_list(&self, name: &str, what: &str) -> Result<Vec<Vec<u8>>, JsonError> {
        let mut out = Vec::new();
        if let Some(items) = self.array(name, what)? {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Null => out.push(Vec::new()),
                    Value::String(s) => out.push(decode_base64(s).map_err(|e| {
                        JsonError(format!("{what}: {name}[{i}]: invalid base64: {e}"))
                    })?),
                    other => {
                        return Err(JsonError(format!(
                            "{what}: {name}[{i}]: expected a base64 string, got {}",
                            kind(other)
                        )));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Go's case-insensitive key match for an ASCII field name: ASCII letters match either
/// case, and the two non-ASCII runes that fold into ASCII letters (U+017F long s, U+212A
/// Kelvin sign) match `s` and `k`, as Go's `foldName` does.
fn go_fold_eq(key: &str, field: &str) -> bool {
    let fold = |c: char| match c {
        '\u{17f}' => 's',
        '\u{212a}' => 'k',
        c => c.to_ascii_lowercase(),
    };
    key.chars().map(fold).eq(field.chars().map(fold))
}

pub fn as_string(v: &Value, ctx: &str) -> Result<String, JsonError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(JsonError(format!(
            "{ctx}: expected a string, got {}",
            kind(other)
        ))),
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Standard padded base64, as Go's `encoding/json` writes `[]byte`.
pub fn encode_base64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(bytes)
}

/// Decodes standard padded base64 like Go's `encoding/json` (which ignores `\r` and `\n`).
pub fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    use base64ct::Encoding;
    let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    base64ct::Base64::decode_vec(&cleaned).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let mut s = String::new();
        push_go_string(
            &mut s,
            "a<b>&c\u{2028}\u{2029}\"\\\n\t\r\u{8}\u{c}\u{1}\u{1f}\u{7f}é😀",
        );
        assert_eq!(
            s,
            "\"a\\u003cb\\u003e\\u0026c\\u2028\\u2029\\\"\\\\\\n\\t\\r\\b\\f\\u0001\\u001f\u{7f}é😀\""
        );
    }

    #[test]
    fn go_key_folding() {
        assert!(go_fold_eq("SIGNATURES", "signatures"));
        assert!(go_fold_eq("\u{17f}ignatures", "signatures"));
        assert!(go_fold_eq("\u{212a}ernel", "kernel"));
        assert!(!go_fold_eq("signature", "signatures"));
        assert!(!go_fold_eq("os-pkg-url", "os_pkg_url"));
    }

    #[test]
    fn empty_object_and_lists() {
        let out = go_object(&[
            ("a", GoValue::StrList(None)),
            ("b", GoValue::StrList(Some(vec![]))),
            ("c", GoValue::StrList(Some(vec!["x".into(), "y".into()]))),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\n  \"a\": null,\n  \"b\": [],\n  \"c\": [\n    \"x\",\n    \"y\"\n  ]\n}"
        );
        assert_eq!(go_object(&[]), b"{}");
    }
}
