//! SWORD `zText` Bible modules: compressed verse text in versification order.
//!
//! A module directory holds, per testament (`ot`, `nt`), three files:
//! - `.bzv`: one 10-byte little-endian record `(u32 block, u32 offset, u16 length)` per verse
//!   slot (slots include the module and testament headings and the book and chapter
//!   introductions of the versification, so two modules with the same versification align
//!   slot by slot);
//! - `.bzs`: one 12-byte record `(u32 offset, u32 compressed length, u32 length)` per block;
//! - `.bzz`: the zlib-compressed blocks; a verse is `length` bytes at `offset` in its block.

use std::path::Path;

use flate2::read::ZlibDecoder;
use std::io::Read;

use mnemo_data::DataError;

/// The config field or argument named by errors of this module.
const FIELD: &str = "SWORD module";

/// The verse slots of the zText module in `module_dir` (Old Testament then New Testament),
/// with markup stripped by [`strip_osis`]; `None` for slots without text.
///
/// # Errors
/// [`DataError::File`] naming the file when one of `{ot,nt}.{bzv,bzs,bzz}` is missing, a
/// record points outside its file, a block does not decompress, or text is not UTF-8.
pub fn read_ztext(module_dir: &Path) -> Result<Vec<Option<String>>, DataError> {
    Ok(read_ztext_raw(module_dir)?
        .into_iter()
        .map(|slot| {
            slot.map(|raw| strip_osis(&raw))
                .filter(|text| !text.is_empty())
        })
        .collect())
}

/// The verse slots of a zText module as stored (OSIS or ThML markup included); `None` for
/// slots of length zero. Same order and errors as [`read_ztext`].
///
/// # Errors
/// See [`read_ztext`].
pub fn read_ztext_raw(module_dir: &Path) -> Result<Vec<Option<String>>, DataError> {
    let mut slots = Vec::new();
    for testament in ["ot", "nt"] {
        read_testament(module_dir, testament, &mut slots)?;
    }
    Ok(slots)
}

/// How many `size`-byte `kind` records the file at `path` holds; the error names the file
/// when `bytes` is not a whole number of them.
fn record_count(path: &Path, bytes: &[u8], size: usize, kind: &str) -> Result<usize, DataError> {
    match bytes.len() % size {
        0 => Ok(bytes.len() / size),
        _ => Err(DataError::file(
            FIELD,
            path,
            format!(
                "{} bytes is not a whole number of {size}-byte {kind} records",
                bytes.len()
            ),
        )),
    }
}

/// The `len` bytes at `offset` in `bytes`, read from `path`; when they run past the end, an
/// error naming the file and saying `overrun()`.
fn record_bytes<'a>(
    bytes: &'a [u8],
    offset: usize,
    len: usize,
    path: &Path,
    overrun: impl FnOnce() -> String,
) -> Result<&'a [u8], DataError> {
    offset
        .checked_add(len)
        .and_then(|end| bytes.get(offset..end))
        .ok_or_else(|| DataError::file(FIELD, path, overrun()))
}

fn read_testament(
    dir: &Path,
    testament: &str,
    slots: &mut Vec<Option<String>>,
) -> Result<(), DataError> {
    let read = |ext: &str| {
        let path = dir.join(format!("{testament}.{ext}"));
        std::fs::read(&path)
            .map(|bytes| (path.clone(), bytes))
            .map_err(|e| DataError::io(FIELD, &path, &e))
    };
    let (bzv_path, bzv) = read("bzv")?;
    let (bzs_path, bzs) = read("bzs")?;
    let (bzz_path, bzz) = read("bzz")?;
    record_count(&bzv_path, &bzv, 10, "verse")?;
    let n_blocks = record_count(&bzs_path, &bzs, 12, "block")?;
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let mut blocks: Vec<Option<Vec<u8>>> = vec![None; n_blocks];
    for (slot, record) in bzv.chunks_exact(10).enumerate() {
        let block = le32(record, 0) as usize;
        let offset = le32(record, 4) as usize;
        let len = u16::from_le_bytes([record[8], record[9]]) as usize;
        if len == 0 {
            slots.push(None);
            continue;
        }
        if block >= n_blocks {
            return Err(DataError::file(
                FIELD,
                &bzv_path,
                format!("slot {slot} names block {block}, but the module has {n_blocks} blocks"),
            ));
        }
        if blocks[block].is_none() {
            let off = le32(&bzs, 12 * block) as usize;
            let zlen = le32(&bzs, 12 * block + 4) as usize;
            let size = le32(&bzs, 12 * block + 8) as usize;
            let compressed = record_bytes(&bzz, off, zlen, &bzz_path, || {
                format!(
                    "block {block} at offset {off} with {zlen} bytes runs past the end ({} bytes)",
                    bzz.len()
                )
            })?;
            let mut text = Vec::with_capacity(size);
            ZlibDecoder::new(compressed)
                .read_to_end(&mut text)
                .map_err(|e| {
                    DataError::file(
                        FIELD,
                        &bzz_path,
                        format!("block {block} does not inflate: {e}"),
                    )
                })?;
            blocks[block] = Some(text);
        }
        let text = blocks[block].as_deref().unwrap_or_default();
        let bytes = record_bytes(text, offset, len, &bzv_path, || {
            format!(
                "slot {slot}: {len} bytes at offset {offset} run past the end of block {block} \
                 ({} bytes)",
                text.len()
            )
        })?;
        let verse = String::from_utf8(bytes.to_vec()).map_err(|e| {
            DataError::file(
                FIELD,
                &bzz_path,
                format!(
                    "slot {slot}: invalid UTF-8 at byte {}",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        slots.push(Some(verse));
    }
    Ok(())
}

/// The plain text of one verse of OSIS or ThML markup.
///
/// Tags are removed (`<w>`, `<transChange>`, `<q>`, `<divineName>` ... keep their text),
/// `<note>…</note>` and `<title>…</title>` elements are dropped with their content except
/// titles marked `canonical="true"` (Psalm superscriptions), the paragraph sign `¶` is
/// removed, the entities `&amp; &lt; &gt; &quot; &apos;` are decoded and whitespace is
/// collapsed to single spaces.
pub fn strip_osis(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut skip_depth = 0usize; // inside a dropped element (nesting of the same name)
    let mut skip_name = String::new();
    let mut rest = raw;
    while let Some(lt) = rest.find('<') {
        if skip_depth == 0 {
            out.push_str(&rest[..lt]);
        }
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[lt + 1..lt + gt];
        rest = &rest[lt + gt + 1..];
        let closing = tag.starts_with('/');
        let self_closing = tag.ends_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        if skip_depth > 0 {
            if name == skip_name && !self_closing {
                if closing {
                    skip_depth -= 1;
                } else {
                    skip_depth += 1;
                }
            }
            continue;
        }
        let dropped = name == "note" || (name == "title" && !tag.contains("canonical=\"true\""));
        if dropped && !closing && !self_closing {
            skip_depth = 1;
            skip_name = name;
            continue;
        }
        // A block-level boundary separates words; an inline one does not.
        if matches!(
            name.as_str(),
            "l" | "lg" | "lb" | "div" | "p" | "br" | "chapter" | "title" | "milestone" | "verse"
        ) {
            out.push(' ');
        }
    }
    if skip_depth == 0 {
        out.push_str(rest);
    }
    let out = out.replace('¶', " ");
    crate::clean::collapse_whitespace(&crate::clean::unescape_entities(&out))
}

/// For each slot of a raw module ([`read_ztext_raw`]), the OSIS id of the book it belongs to
/// (the `osisID` of the last `<div ... type="book">` seen so far); `None` before the first
/// book. (The New Testament's heading slots, which carry no verse text, get the last Old
/// Testament book.)
pub fn book_ids(raw: &[Option<String>]) -> Vec<Option<String>> {
    let mut current: Option<String> = None;
    raw.iter()
        .map(|slot| {
            if let Some(id) = slot.as_deref().and_then(book_div_id) {
                current = Some(id);
            }
            current.clone()
        })
        .collect()
}

/// The `osisID` of the first `<div ... type="book" ...>` tag in `text`.
fn book_div_id(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find("<div") {
        let tag_end = rest[start..].find('>')? + start;
        let tag = &rest[start..tag_end];
        if tag.contains("type=\"book\"") {
            let id_at = tag.find("osisID=\"")? + "osisID=\"".len();
            let id_len = tag[id_at..].find('"')?;
            return Some(tag[id_at..id_at + id_len].to_string());
        }
        rest = &rest[tag_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_count_names_the_file_and_the_record_size() {
        let path = Path::new("ot.bzs");
        assert_eq!(record_count(path, &[0; 24], 12, "block").unwrap(), 2);
        let err = record_count(path, &[0; 25], 12, "block")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "SWORD module: ot.bzs: 25 bytes is not a whole number of 12-byte block records"
        );
    }
}
