//! Splitting a line into words, shell style. Pure: no I/O.
//!
//! Used by the prompt for command lines and by the cmdline parser for the
//! value of `nekos.service=`. The rules are a small, predictable subset of
//! POSIX sh quoting, because users type these on a serial line and expect the
//! obvious thing:
//! - unquoted whitespace separates words;
//! - `'...'` is literal;
//! - `"..."` is literal except that `\"` and `\\` escape;
//! - outside quotes, `\x` is a literal `x`.
//!
//! There is no globbing, no variables, no redirection: the prompt is a rescue
//! tool, not a scripting language.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    UnterminatedSingle,
    UnterminatedDouble,
    TrailingBackslash,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::UnterminatedSingle => f.write_str("unterminated single quote"),
            SplitError::UnterminatedDouble => f.write_str("unterminated double quote"),
            SplitError::TrailingBackslash => f.write_str("backslash at end of line"),
        }
    }
}

pub fn split(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    // A word may be empty but present (`''`), so track presence separately.
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(SplitError::UnterminatedSingle),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\')) => cur.push(ch),
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err(SplitError::UnterminatedDouble),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(SplitError::UnterminatedDouble),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(ch) => {
                    in_word = true;
                    cur.push(ch);
                }
                None => return Err(SplitError::TrailingBackslash),
            },
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn s(line: &str) -> Vec<String> {
        split(line).unwrap()
    }

    #[test]
    fn plain_words() {
        assert_eq!(s("ls  /bin\t-l "), ["ls", "/bin", "-l"]);
        assert!(s("").is_empty());
        assert!(s("   \t ").is_empty());
    }

    #[test]
    fn quotes() {
        assert_eq!(s(r#"cat "a b" 'c d'"#), ["cat", "a b", "c d"]);
        assert_eq!(s(r#"x"y z"w"#), ["xy zw"]);
        assert_eq!(s("''"), [""]);
        assert_eq!(s(r#"a "" b"#), ["a", "", "b"]);
        assert_eq!(s(r#"'a"b'"#), [r#"a"b"#]);
        assert_eq!(s(r#""it's""#), ["it's"]);
    }

    #[test]
    fn escapes() {
        assert_eq!(s(r"a\ b"), ["a b"]);
        assert_eq!(s(r#""a\"b\\c\d""#), [r#"a"b\c\d"#]);
        assert_eq!(s(r"'\n'"), [r"\n"]);
    }

    #[test]
    fn errors() {
        assert_eq!(split("'abc"), Err(SplitError::UnterminatedSingle));
        assert_eq!(split("\"abc"), Err(SplitError::UnterminatedDouble));
        assert_eq!(split("abc\\"), Err(SplitError::TrailingBackslash));
    }
}
