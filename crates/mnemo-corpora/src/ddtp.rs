//! Debian package-description translations (DDTP): the `Translation-<ll>` indexes of an apt
//! archive and the pairing of an English and a translated index.
//!
//! An index is a sequence of RFC-822 records separated by blank lines:
//!
//! ```text
//! Package: 0ad
//! Description-md5: d943033bedada21853d2ae54a2578a7b
//! Description-de: Echtzeit-Strategiespiel über antike Kriegsführung
//!  0 A.D. ist ein freies, quelloffenes, plattformübergreifendes
//!  Echtzeit-Strategiespiel (RTS) ...
//!  .
//!  Ein zweiter Absatz.
//! ```
//!
//! The first line of `Description-<ll>` is the summary; the continuation lines (starting with a
//! space) form the long description, whose paragraphs are separated by ` .` lines.
//! `Description-md5` is the md5 of the *English* description, so it identifies the same
//! description in every language.

use std::collections::HashMap;
use std::path::Path;

use crate::clean::collapse_whitespace;
use mnemo_data::DataError;

/// The config field or argument named by errors of this module.
const FIELD: &str = "DDTP index";

/// One record of a `Translation-<ll>` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdtpRecord {
    /// The binary package name (`Package:`).
    pub package: String,
    /// The md5 of the English description (`Description-md5:`), shared by all languages.
    pub md5: String,
    /// The language code of the `Description-<ll>` field, e.g. `en` or `de`.
    pub language: String,
    /// The one-line summary, whitespace-collapsed.
    pub summary: String,
    /// The paragraphs of the long description (split on ` .` lines), each on one line with
    /// whitespace collapsed; empty when there is no long description.
    pub paragraphs: Vec<String>,
}

/// Read every record of the uncompressed index at `path`, in file order.
///
/// # Errors
/// [`DataError::File`] naming `path` when it cannot be read, is not UTF-8, or a record lacks
/// `Package:`, `Description-md5:` or `Description-<ll>:` (the reason gives the line number).
pub fn read_translation_index(path: &Path) -> Result<Vec<DdtpRecord>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(FIELD, path, &e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        DataError::file(
            FIELD,
            path,
            format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        )
    })?;
    parse_translation_index(&text).map_err(|reason| DataError::file(FIELD, path, reason))
}

/// Parse the text of a `Translation-<ll>` index (see [`read_translation_index`]); the error
/// is a reason naming the line.
///
/// # Errors
/// A record without `Package:`, `Description-md5:` or `Description-<ll>:`.
pub fn parse_translation_index(text: &str) -> Result<Vec<DdtpRecord>, String> {
    let mut records = Vec::new();
    let mut current = Partial::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            if let Some(record) = current.finish()? {
                records.push(record);
            }
            current = Partial::default();
            continue;
        }
        if current.start_line == 0 {
            current.start_line = line_no;
        }
        if let Some(cont) = line.strip_prefix(' ').or_else(|| line.strip_prefix('\t')) {
            if current.language.is_none() {
                continue; // continuation of a field we do not keep
            }
            if cont.trim() == "." {
                current.paragraphs.push(String::new());
            } else {
                let paragraph = current.paragraphs.last_mut().ok_or_else(|| {
                    format!("line {line_no}: continuation line before any description")
                })?;
                paragraph.push(' ');
                paragraph.push_str(cont);
            }
            continue;
        }
        current.language = None;
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!(
                "line {line_no}: expected `Field: value`, got `{line}`"
            ));
        };
        let value = value.trim();
        match key {
            "Package" => current.package = Some(value.to_string()),
            "Description-md5" => current.md5 = Some(value.to_string()),
            _ => {
                if let Some(language) = key.strip_prefix("Description-") {
                    current.language = Some(language.to_string());
                    current.description_language = Some(language.to_string());
                    current.summary = Some(collapse_whitespace(value));
                    current.paragraphs = vec![String::new()];
                }
            }
        }
    }
    if let Some(record) = current.finish()? {
        records.push(record);
    }
    Ok(records)
}

/// A record being parsed.
#[derive(Default)]
struct Partial {
    start_line: usize,
    package: Option<String>,
    md5: Option<String>,
    /// The language of the description field being continued (None outside it).
    language: Option<String>,
    description_language: Option<String>,
    summary: Option<String>,
    paragraphs: Vec<String>,
}

impl Partial {
    fn finish(self) -> Result<Option<DdtpRecord>, String> {
        if self.start_line == 0 {
            return Ok(None);
        }
        let line = self.start_line;
        let missing = |field: &str| format!("record at line {line}: no `{field}:` field");
        let package = self.package.ok_or_else(|| missing("Package"))?;
        let md5 = self.md5.ok_or_else(|| missing("Description-md5"))?;
        let language = self
            .description_language
            .ok_or_else(|| missing("Description-<ll>"))?;
        let summary = self.summary.unwrap_or_default();
        let paragraphs = self
            .paragraphs
            .iter()
            .map(|p| collapse_whitespace(p))
            .filter(|p| !p.is_empty())
            .collect();
        Ok(Some(DdtpRecord {
            package,
            md5,
            language,
            summary,
            paragraphs,
        }))
    }
}

/// Pair the descriptions of an English index with those of a translated one on
/// `Description-md5`: `(package, english, translation)` for the summary, then for each
/// paragraph when both sides have the same number of paragraphs (otherwise the paragraphs of
/// that description are dropped and only the summaries pair). Follows the order of
/// `translated`; an md5 absent from `english` gives nothing. Empty texts are skipped.
pub fn pair_descriptions(
    english: &[DdtpRecord],
    translated: &[DdtpRecord],
) -> Vec<(String, String, String)> {
    let mut by_md5: HashMap<&str, &DdtpRecord> = HashMap::with_capacity(english.len());
    for record in english {
        by_md5.entry(record.md5.as_str()).or_insert(record);
    }
    let mut pairs = Vec::new();
    for tr in translated {
        let Some(en) = by_md5.get(tr.md5.as_str()) else {
            continue;
        };
        let mut push = |a: &str, b: &str| {
            if !a.is_empty() && !b.is_empty() {
                pairs.push((tr.package.clone(), a.to_string(), b.to_string()));
            }
        };
        push(&en.summary, &tr.summary);
        if en.paragraphs.len() == tr.paragraphs.len() {
            for (a, b) in en.paragraphs.iter().zip(&tr.paragraphs) {
                push(a, b);
            }
        }
    }
    pairs
}
