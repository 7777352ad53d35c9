//! The Debian Administrator's Handbook (publican HTML): paragraphs and headings of the same
//! chapter in two languages, aligned by position.
//!
//! Every language directory (`html/en-US`, `html/de-DE`, ...) holds the same chapter files.
//! The segments of a chapter are its `<div class="para">` elements and its `<h1>`…`<h6>`
//! headings in document order; a paragraph nested in another counts as part of the outer one.

use std::path::{Path, PathBuf};

use crate::clean::{collapse_whitespace, unescape_entities, word_count};
use mnemo_data::DataError;

/// The config field or argument named by errors of this module.
const FIELD: &str = "handbook";

/// Segments with fewer English words than this are not paired.
pub const MIN_WORDS: usize = 3;

/// The outcome of aligning two language directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandbookAlignment {
    /// `(english, translation)` pairs, chapter files in name order.
    pub pairs: Vec<(String, String)>,
    /// Chapter files whose segment counts matched.
    pub chapters_aligned: Vec<String>,
    /// Chapter files skipped: missing in the translation or with a different segment count.
    pub chapters_skipped: Vec<String>,
}

/// Align the chapters of `en_dir` with those of `de_dir` (same file names; see the module
/// docs) and return the `(english, translation)` pairs whose English side has at least
/// [`MIN_WORDS`] words. Chapters whose segment counts differ are skipped.
///
/// # Errors
/// [`DataError::File`] naming the directory or file that cannot be read or is not UTF-8, or
/// `en_dir` when it holds no `.html` file.
pub fn align_chapters(en_dir: &Path, de_dir: &Path) -> Result<Vec<(String, String)>, DataError> {
    Ok(align_chapters_detailed(en_dir, de_dir)?.pairs)
}

/// [`align_chapters`] with the lists of aligned and skipped chapters.
///
/// # Errors
/// See [`align_chapters`].
pub fn align_chapters_detailed(
    en_dir: &Path,
    de_dir: &Path,
) -> Result<HandbookAlignment, DataError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(en_dir)
        .map_err(|e| DataError::io(FIELD, en_dir, &e))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "html"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::file(FIELD, en_dir, "no .html chapter files"));
    }
    if !de_dir.is_dir() {
        return Err(DataError::file(FIELD, de_dir, "not a directory"));
    }
    let mut out = HandbookAlignment::default();
    for en_path in files {
        let name = en_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let de_path = de_dir.join(&name);
        if !de_path.is_file() {
            out.chapters_skipped.push(name);
            continue;
        }
        let en = chapter_segments(&read_utf8(&en_path)?);
        let de = chapter_segments(&read_utf8(&de_path)?);
        if en.len() != de.len() {
            out.chapters_skipped.push(name);
            continue;
        }
        for (a, b) in en.into_iter().zip(de) {
            if word_count(&a) >= MIN_WORDS && !b.is_empty() {
                out.pairs.push((a, b));
            }
        }
        out.chapters_aligned.push(name);
    }
    Ok(out)
}

fn read_utf8(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(FIELD, path, &e))?;
    String::from_utf8(bytes).map_err(|e| {
        DataError::file(
            FIELD,
            path,
            format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        )
    })
}

/// The texts of the `<div class="para">` elements and `<hN>` headings of one HTML page, in
/// document order: tags stripped, entities decoded, whitespace collapsed. Empty texts are
/// kept (as empty strings) so that positions stay comparable across languages.
pub fn chapter_segments(html: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut at = 0;
    while let Some(found) = next_segment_start(html, at) {
        let (start, kind) = found;
        let content_start = match html[start..].find('>') {
            Some(gt) => start + gt + 1,
            None => break,
        };
        let (content_end, after) = match kind {
            Segment::Para => matching_div_end(html, content_start),
            Segment::Heading(level) => {
                let close = format!("</h{level}>");
                match html[content_start..].find(&close) {
                    Some(pos) => (content_start + pos, content_start + pos + close.len()),
                    None => (html.len(), html.len()),
                }
            }
        };
        segments.push(element_text(&html[content_start..content_end]));
        at = after;
    }
    segments
}

/// What starts a segment.
#[derive(Clone, Copy)]
enum Segment {
    Para,
    Heading(u8),
}

/// The byte position of the next `<div class="para">` or `<hN` tag at or after `from`.
fn next_segment_start(html: &str, from: usize) -> Option<(usize, Segment)> {
    let bytes = html.as_bytes();
    let mut pos = from;
    while let Some(rel) = html[pos..].find('<') {
        let start = pos + rel;
        let rest = &html[start..];
        if rest.starts_with("<div class=\"para\"") {
            return Some((start, Segment::Para));
        }
        if bytes.len() > start + 2
            && (bytes[start + 1] == b'h' || bytes[start + 1] == b'H')
            && (b'1'..=b'6').contains(&bytes[start + 2])
            && bytes
                .get(start + 3)
                .is_some_and(|&b| b == b'>' || b.is_ascii_whitespace())
        {
            return Some((start, Segment::Heading(bytes[start + 2] - b'0')));
        }
        pos = start + 1;
    }
    None
}

/// The end of the content of a `<div>` whose content starts at `from` (nested divs counted)
/// and the position after its `</div>`.
fn matching_div_end(html: &str, from: usize) -> (usize, usize) {
    let mut depth = 1usize;
    let mut pos = from;
    while let Some(rel) = html[pos..].find('<') {
        let start = pos + rel;
        let rest = &html[start..];
        if rest.starts_with("</div") {
            depth -= 1;
            if depth == 0 {
                let after = rest.find('>').map_or(html.len(), |gt| start + gt + 1);
                return (start, after);
            }
        } else if rest.starts_with("<div") {
            let tag_end = rest.find('>').unwrap_or(rest.len());
            if !rest[..tag_end].ends_with('/') {
                depth += 1;
            }
        }
        pos = start + 1;
    }
    (html.len(), html.len())
}

/// Plain text of an HTML fragment: tags removed (block tags become spaces), entities decoded,
/// whitespace collapsed.
fn element_text(fragment: &str) -> String {
    let mut out = String::with_capacity(fragment.len());
    let mut rest = fragment;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let name: String = rest[lt + 1..lt + gt]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if matches!(
            name.as_str(),
            "div"
                | "p"
                | "br"
                | "li"
                | "ul"
                | "ol"
                | "pre"
                | "table"
                | "tr"
                | "td"
                | "th"
                | "dt"
                | "dd"
        ) {
            out.push(' ');
        }
        rest = &rest[lt + gt + 1..];
    }
    out.push_str(rest);
    collapse_whitespace(&unescape_entities(&out))
}
