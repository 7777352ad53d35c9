//! WMT-style SGML test sets (`newstest2014-deen-src.en.sgm`): the text of each
//! `<seg id="..">..</seg>` element, in document order, with the five XML entities unescaped.
//!
//! Follows what sacrebleu and Moses' `input-from-sgm.perl` do: everything outside `<seg>`
//! elements (`<srcset>`, `<doc>`, `<p>`, headers) is ignored, the text of a segment is trimmed
//! and its inner whitespace collapsed to single spaces. Only `&amp; &lt; &gt; &quot; &apos;`
//! are unescaped; any other `&...;` stays as written.

use crate::entities::{EntityRules, decode_entities};

/// Unescapes the five predefined XML entities; anything else (`&nbsp;`, a bare `&`) is kept.
///
/// ```
/// use mnemo_data::translation::sgm::unescape_entities;
/// assert_eq!(unescape_entities("a &amp;lt; b &lt; c &nbsp;"), "a &lt; b < c &nbsp;");
/// ```
pub fn unescape_entities(text: &str) -> String {
    let rules = EntityRules {
        numeric: false,
        max_semi: 5,
        other: |_| None,
    };
    decode_entities(text, rules)
}

/// The segments of an SGML document: the unescaped, whitespace-collapsed text of every
/// `<seg ...>...</seg>` element, in order.
///
/// Errors (as a message, without the path: the caller adds it) when a `<seg` element is not
/// closed, giving its 1-based number.
///
/// ```
/// use mnemo_data::translation::sgm::segments;
/// let sgm = "<doc docid=\"x\">\n<p>\n<seg id=\"1\"> Tom &amp; Jerry </seg>\n</p></doc>";
/// assert_eq!(segments(sgm).unwrap(), vec!["Tom & Jerry".to_string()]);
/// ```
pub fn segments(document: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = document;
    while let Some(open) = find_seg_open(rest) {
        let after_open = &rest[open..];
        let Some(tag_end) = after_open.find('>') else {
            return Err(format!(
                "segment {} has an unterminated <seg tag",
                out.len() + 1
            ));
        };
        let body = &after_open[tag_end + 1..];
        let Some(close) = body.find("</seg>") else {
            return Err(format!("segment {} has no closing </seg>", out.len() + 1));
        };
        let text = &body[..close];
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push(unescape_entities(&collapsed));
        rest = &body[close + "</seg>".len()..];
    }
    Ok(out)
}

/// Byte offset of the next `<seg` opening tag (`<seg>` or `<seg ` + attributes), skipping
/// other tags that merely start with `seg` (none exist in WMT files, but `<segment>` would).
fn find_seg_open(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find("<seg") {
        let start = from + at;
        let next = text[start + 4..].chars().next();
        if matches!(next, Some(c) if c == '>' || c.is_whitespace()) {
            return Some(start);
        }
        from = start + 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_unescape_once_and_unknown_ones_stay() {
        assert_eq!(
            unescape_entities("&quot;x&quot; &apos;y&apos; a&gt;b &amp;amp; & &foo;"),
            "\"x\" 'y' a>b &amp; & &foo;"
        );
    }

    #[test]
    fn other_tags_are_ignored_and_unclosed_segments_rejected() {
        let doc = "<srcset><segment>no</segment><seg id=1>a\n b</seg><seg>c</seg></srcset>";
        assert_eq!(segments(doc).unwrap(), vec!["a b", "c"]);
        let err = segments("<seg id=1>a</seg><seg id=2>b").unwrap_err();
        assert!(err.contains("segment 2"), "{err}");
    }
}
