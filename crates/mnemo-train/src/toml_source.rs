//! Parsing TOML into configs with errors that name the field and its line.
//!
//! `toml` reports *where* an error is (a byte span) and serde *what* it is, but inside a
//! serde-tagged enum (`[models.x]` with `kind = ...`, `[data]` with `task = ...`) neither
//! names the field: serde buffers the table, and a wrong type surfaces as "invalid type:
//! string "a", expected usize" at the table. This module tracks the key path with
//! `serde_path_to_error` and, for those buffered tables, finds the one key whose value matches
//! what serde complained about, so that every message reads `models.x.d_model: ...`.
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

/// A parse error located in the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// Dotted key path of the offending field, if known (`optim.lr`).
    pub field: Option<String>,
    /// 1-based line, if known.
    pub line: Option<usize>,
    /// What is wrong, on one line.
    pub message: String,
}

/// Deserialize `text` as TOML into `T`, locating any error.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Located> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|err| {
        let keys: Vec<String> = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                Segment::Map { key } => Some(key.clone()),
                Segment::Enum { variant } => Some(variant.clone()),
                Segment::Seq { index } => Some(index.to_string()),
                Segment::Unknown => None,
            })
            .collect();
        let inner = err.into_inner();
        let message = one_line(inner.message());
        let span_line = inner
            .span()
            .filter(|s| s.start > 0 || s.end > 0)
            .map(|s| line_of(text, s.start));
        let keys = refine(text, keys, &message);
        let field = (!keys.is_empty()).then(|| keys.join("."));
        // A missing field has no line of its own: point at its table's header.
        let parent = (message.starts_with("missing field") && keys.len() > 1)
            .then(|| keys[..keys.len() - 1].join("."));
        let line = field
            .as_deref()
            .and_then(|f| locate(text, f))
            .or_else(|| parent.and_then(|p| locate(text, &p)))
            .or(span_line);
        Located {
            field,
            line,
            message,
        }
    })
}

/// Collapse a possibly multi-line message into one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 1-based line of byte offset `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The text between the first two backticks of `message` (`unknown field `x`` → `x`).
fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Complete a key path that stops at a buffered (tagged) table.
fn refine(text: &str, mut keys: Vec<String>, message: &str) -> Vec<String> {
    if message.starts_with("unknown field") || message.starts_with("missing field") {
        if let Some(name) = backticked(message)
            && keys.last().map(String::as_str) != Some(name)
        {
            keys.push(name.to_string());
        }
        return keys;
    }
    let unexpected = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split(", expected").next());
    let Some(unexpected) = unexpected else {
        return keys;
    };
    let Ok(root) = text.parse::<toml::Table>() else {
        return keys;
    };
    let mut node = &root;
    for key in &keys {
        match node.get(key) {
            Some(toml::Value::Table(table)) => node = table,
            _ => return keys,
        }
    }
    let mut matches = node
        .iter()
        .filter(|(_, value)| describe(value) == unexpected);
    if let (Some((key, _)), None) = (matches.next(), matches.next()) {
        keys.push(key.clone());
    }
    keys
}

/// How serde's `Unexpected` describes a TOML value (`string "a"`, `integer `3``).
fn describe(value: &toml::Value) -> String {
    use serde::de::Unexpected;
    let unexpected = match value {
        toml::Value::String(s) => Unexpected::Str(s),
        toml::Value::Integer(i) => Unexpected::Signed(*i),
        toml::Value::Float(f) => Unexpected::Float(*f),
        toml::Value::Boolean(b) => Unexpected::Bool(*b),
        toml::Value::Array(_) => Unexpected::Seq,
        toml::Value::Table(_) => Unexpected::Map,
        toml::Value::Datetime(_) => Unexpected::Other("datetime"),
    };
    unexpected.to_string()
}

/// 1-based line where the dotted key `field` is written (as `key = ...` under its table header,
/// or as the header itself), for ordinary layouts.
pub(crate) fn locate(text: &str, field: &str) -> Option<usize> {
    let target: Vec<&str> = field.split('.').collect();
    let mut table: Vec<String> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let inner = line.trim_start_matches('[');
            let inner = inner.split(']').next().unwrap_or("");
            table = split_key(inner);
            if table == target {
                return Some(index + 1);
            }
        } else if let Some((key, _)) = line.split_once('=')
            && !line.starts_with('#')
        {
            let mut full = table.clone();
            full.extend(split_key(key));
            if full == target {
                return Some(index + 1);
            }
        }
    }
    None
}

/// `a."b c".d` → `["a", "b c", "d"]` (quotes stripped; dots inside quotes are not handled).
fn split_key(key: &str) -> Vec<String> {
    key.split('.')
        .map(|part| part.trim().trim_matches(['"', '\'']).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        width: usize,
        #[serde(default)]
        rate: f64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Tagged {
        Small(Inner),
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Top {
        plain: Inner,
        models: BTreeMap<String, Tagged>,
    }

    const OK: &str = "[plain]\nwidth = 3\n\n[models.a]\nkind = \"small\"\nwidth = 4\n";

    fn err(text: &str) -> Located {
        parse::<Top>(text).unwrap_err()
    }

    #[test]
    fn plain_fields_are_named_with_their_line() {
        assert!(parse::<Top>(OK).is_ok());
        let e = err(&OK.replace("width = 3", "width = 3\nextra = 1"));
        assert_eq!((e.field.as_deref(), e.line), (Some("plain.extra"), Some(3)));
        assert!(e.message.contains("unknown field `extra`"), "{}", e.message);
        let e = err(&OK.replace("width = 3", "width = \"wide\""));
        assert_eq!((e.field.as_deref(), e.line), (Some("plain.width"), Some(2)));
    }

    #[test]
    fn fields_inside_tagged_tables_are_named() {
        let e = err(&OK.replace("width = 4", "width = \"x\""));
        assert_eq!(
            (e.field.as_deref(), e.line),
            (Some("models.a.width"), Some(6))
        );
        assert!(
            e.message.contains("invalid type: string \"x\""),
            "{}",
            e.message
        );
        let e = err(&OK.replace("width = 4", "width = 4\nrate = true"));
        assert_eq!(
            (e.field.as_deref(), e.line),
            (Some("models.a.rate"), Some(7))
        );
        let e = err(&OK.replace("width = 4", "width = 4\nbogus = 1"));
        assert_eq!(
            (e.field.as_deref(), e.line),
            (Some("models.a.bogus"), Some(7))
        );
        let e = err(&OK.replace("width = 4", "width = -4"));
        assert_eq!(e.field.as_deref(), Some("models.a.width"));
        let e = err(&OK.replace("\"small\"", "\"huge\""));
        assert_eq!(
            (e.field.as_deref(), e.line),
            (Some("models.a.kind"), Some(5))
        );
    }

    #[test]
    fn missing_fields_and_syntax_errors() {
        let e = err("[plain]\nwidth = 3\n");
        assert_eq!(e.field.as_deref(), Some("models"));
        let e = err(&OK.replace("width = 4", ""));
        assert_eq!(
            (e.field.as_deref(), e.line),
            (Some("models.a.width"), Some(4))
        );
        let e = err(&OK.replace("width = 3", "width = = 3"));
        assert_eq!(e.line, Some(2));
        assert!(!e.message.contains('\n'));
    }
}
