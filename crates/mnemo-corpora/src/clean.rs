//! Text normalisation shared by the corpus readers and the preparation step.

use mnemo_data::entities::{EntityRules, decode_entities};

/// Collapse every run of whitespace (spaces, tabs, newlines, no-break spaces ...) to one space
/// and trim both ends, so a segment fits on one line of a line-aligned file.
pub fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Decode the XML/HTML entities `&amp; &lt; &gt; &quot; &apos; &nbsp;` and numeric `&#NN;` /
/// `&#xHH;` references; anything else starting with `&` is left as is.
pub fn unescape_entities(text: &str) -> String {
    let rules = EntityRules {
        numeric: true,
        max_semi: 10,
        other: |name| (name == "nbsp").then_some("\u{a0}"),
    };
    decode_entities(text, rules)
}

/// Remove a keyboard-accelerator mark from a UI string: `_` (GTK), `&` (Qt/KDE) or `~`
/// (LibreOffice) directly before a letter or digit, when the string holds exactly one such
/// mark character (so `snake_case_name`, `a & b` and `&amp;` are left alone). `&&` and `__`
/// (escaped literal marks) are left as they are.
pub fn strip_accelerator(text: &str) -> String {
    let mut out = text.to_string();
    for mark in ['_', '&', '~'] {
        if out.matches(mark).count() != 1 {
            continue;
        }
        let at = out.find(mark).unwrap_or_default();
        let next = out[at + 1..].chars().next();
        let is_entity = mark == '&'
            && out[at + 1..].find(';').is_some_and(|semi| {
                out[at + 1..at + 1 + semi]
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '#')
            });
        if next.is_some_and(char::is_alphanumeric) && !is_entity {
            out.remove(at);
        }
    }
    out
}

/// Whether `text` has no letter left once printf/Python/brace format codes (`%s`, `%1$d`,
/// `%(name)s`, `%-10.3lf`, `{0}`, `{name}`, `${VAR}`) are removed, e.g. `%s: %s` or
/// `{0} ({1})`.
pub fn is_format_only(text: &str) -> bool {
    !strip_format_codes(text).chars().any(char::is_alphabetic)
}

/// `text` without its format codes (see [`is_format_only`]).
fn strip_format_codes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '%' => {
                let mut j = i + 1;
                if chars.get(j) == Some(&'(') {
                    while j < chars.len() && chars[j] != ')' {
                        j += 1;
                    }
                    j += 1;
                }
                while j < chars.len()
                    && (chars[j].is_ascii_digit() || "$-+ #'.*lhLqjztI".contains(chars[j]))
                {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_alphabetic() {
                    i = j + 1; // conversion letter
                } else {
                    out.push('%');
                    i += 1;
                }
            }
            '{' => match chars[i..].iter().position(|&c| c == '}') {
                Some(len) => i += len + 1,
                None => {
                    out.push('{');
                    i += 1;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Number of whitespace-separated words.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}
