//! One decoder for `&name;` references, shared by the WMT `.sgm` reader here and, in
//! `mnemo-corpora`, the MediaWiki converter and the corpus readers (Handbook HTML, SWORD OSIS),
//! each with its own rules.

/// Which references [`decode_entities`] decodes.
#[derive(Debug, Clone, Copy)]
pub struct EntityRules {
    /// Decode numeric references `&#NN;` / `&#xHH;`.
    pub numeric: bool,
    /// The `;` must be at most this many bytes after the `&` (longer names stay as written).
    pub max_semi: usize,
    /// Names other than the five XML entities (`amp lt gt quot apos`) and numeric references:
    /// their replacement, or `None` to leave the reference as written.
    pub other: fn(&str) -> Option<&'static str>,
}

/// Decode the references of `text` by `rules`; a `&` that starts no decodable reference is
/// kept as it is.
///
/// ```
/// use mnemo_data::entities::{EntityRules, decode_entities};
/// let xml = EntityRules { numeric: true, max_semi: 11, other: |_| None };
/// assert_eq!(decode_entities("a &amp;lt; &#65;&#x42; & &nbsp;", xml), "a &lt; AB & &nbsp;");
/// ```
pub fn decode_entities(text: &str, rules: EntityRules) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // `;` is ASCII, so the index found among the first bytes is a char boundary.
        let decoded = rest
            .bytes()
            .take(rules.max_semi + 1)
            .position(|b| b == b';')
            .and_then(|semi| {
                let name = &rest[1..semi];
                let numeric = |digits: &str, radix: u32| {
                    u32::from_str_radix(digits, radix)
                        .ok()
                        .and_then(char::from_u32)
                        .map(String::from)
                };
                let text = match name {
                    "amp" => Some("&".to_string()),
                    "lt" => Some("<".to_string()),
                    "gt" => Some(">".to_string()),
                    "quot" => Some("\"".to_string()),
                    "apos" => Some("'".to_string()),
                    _ if rules.numeric && (name.starts_with("#x") || name.starts_with("#X")) => {
                        numeric(&name[2..], 16)
                    }
                    _ if rules.numeric && name.starts_with('#') => numeric(&name[1..], 10),
                    _ => (rules.other)(name).map(String::from),
                };
                text.map(|t| (t, semi))
            });
        match decoded {
            Some((t, semi)) => {
                out.push_str(&t);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
