//! GNU gettext `.mo` catalogs: the (msgid, msgstr) pairs of a compiled message catalog.
//!
//! Layout (both byte orders, told apart by the magic number `0x950412de`): a header of seven
//! `u32` (magic, revision, number of strings N, offset of the original-string table, offset of
//! the translation table, hash size, hash offset), then two tables of N `(u32 length, u32
//! offset)` entries pointing at the strings. A msgid `context\x04id` carries a message
//! context; `singular\0plural` a plural form, and its msgstr holds one translation per plural
//! form separated by `\0`.

use std::path::Path;

use mnemo_data::DataError;

/// The magic number of a `.mo` file as read in the file's own byte order.
const MAGIC: u32 = 0x9504_12de;

/// The config field or argument named by errors of this module.
const FIELD: &str = "gettext catalog";

/// Read the (msgid, msgstr) pairs of the `.mo` file at `path`, in file order.
///
/// The header entry (empty msgid) and entries with an empty translation are skipped; a
/// message context is dropped (the entry is kept); for plural entries the singular msgid and
/// the first translation are kept. Strings are decoded with the charset of the header
/// (UTF-8, ASCII or ISO-8859-1/-15; other charsets are an error).
///
/// # Errors
/// [`DataError::File`] naming `path` when the file cannot be read, is truncated, has a bad
/// magic number, an offset outside the file, or text that is not valid in its charset.
pub fn read_mo(path: &Path) -> Result<Vec<(String, String)>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(FIELD, path, &e))?;
    parse_mo(&bytes).map_err(|reason| DataError::file(FIELD, path, reason))
}

/// Parse the bytes of a `.mo` file (see [`read_mo`]); the error is a reason without the path.
///
/// # Errors
/// A description of the first structural problem found.
pub fn parse_mo(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let reader = Reader::new(bytes)?;
    let n = reader.u32_at(8)? as usize;
    let originals = reader.u32_at(12)? as usize;
    let translations = reader.u32_at(16)? as usize;
    let mut raw = Vec::with_capacity(n.min(bytes.len() / 16));
    let mut charset = Charset::Utf8;
    for i in 0..n {
        let id = reader.string(originals, i, "original")?;
        let tr = reader.string(translations, i, "translation")?;
        if id.is_empty() {
            charset = header_charset(tr)?;
            continue;
        }
        raw.push((i, id, tr));
    }
    let mut pairs = Vec::with_capacity(raw.len());
    for (i, id, tr) in raw {
        let id = id.rsplit(|&b| b == 4).next().unwrap_or(id); // drop `context\x04`
        let id = id.split(|&b| b == 0).next().unwrap_or(id); // singular msgid
        let tr = tr.split(|&b| b == 0).next().unwrap_or(tr); // first plural form
        if id.is_empty() || tr.is_empty() {
            continue;
        }
        let id = charset
            .decode(id)
            .map_err(|e| format!("string {i} (original): {e}"))?;
        let tr = charset
            .decode(tr)
            .map_err(|e| format!("string {i} (translation): {e}"))?;
        pairs.push((id, tr));
    }
    Ok(pairs)
}

/// Byte-order-aware access to the file.
struct Reader<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.len() < 28 {
            return Err(format!(
                "truncated: {} bytes, a .mo header needs 28",
                bytes.len()
            ));
        }
        let head = [bytes[0], bytes[1], bytes[2], bytes[3]];
        let big_endian = if u32::from_le_bytes(head) == MAGIC {
            false
        } else if u32::from_be_bytes(head) == MAGIC {
            true
        } else {
            return Err(format!(
                "not a gettext .mo file: magic number 0x{:08x}, expected 0x{MAGIC:08x}",
                u32::from_le_bytes(head)
            ));
        };
        let reader = Self { bytes, big_endian };
        let major = reader.u32_at(4)? >> 16;
        if major > 1 {
            return Err(format!("unsupported .mo major revision {major}"));
        }
        Ok(reader)
    }

    fn u32_at(&self, offset: usize) -> Result<u32, String> {
        let b = offset
            .checked_add(4)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or_else(|| {
                format!(
                    "truncated: offset {offset} is past the end of the file ({} bytes)",
                    self.bytes.len()
                )
            })?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// String `i` of the table at `table` (`what` names the table in errors).
    fn string(&self, table: usize, i: usize, what: &str) -> Result<&'a [u8], String> {
        let entry = table + 8 * i;
        let len = self.u32_at(entry)? as usize;
        let off = self.u32_at(entry + 4)? as usize;
        off.checked_add(len)
            .and_then(|end| self.bytes.get(off..end))
            .ok_or_else(|| {
                format!(
                    "truncated: {what} string {i} at offset {off} with length {len} runs past \
                     the end of the file ({} bytes)",
                    self.bytes.len()
                )
            })
    }
}

/// The charsets a catalog may declare.
#[derive(Clone, Copy)]
enum Charset {
    Utf8,
    Latin1,
    Latin9,
}

impl Charset {
    fn decode(self, bytes: &[u8]) -> Result<String, String> {
        match self {
            Self::Utf8 => String::from_utf8(bytes.to_vec())
                .map_err(|e| format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to())),
            Self::Latin1 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            Self::Latin9 => Ok(bytes
                .iter()
                .map(|&b| match b {
                    0xa4 => '€',
                    0xa6 => 'Š',
                    0xa8 => 'š',
                    0xb4 => 'Ž',
                    0xb8 => 'ž',
                    0xbc => 'Œ',
                    0xbd => 'œ',
                    0xbe => 'Ÿ',
                    _ => char::from(b),
                })
                .collect()),
        }
    }
}

/// The charset of the header entry's `Content-Type: ...; charset=X` line (UTF-8 if absent).
fn header_charset(header: &[u8]) -> Result<Charset, String> {
    let header = String::from_utf8_lossy(header);
    let Some(pos) = header.to_ascii_lowercase().find("charset=") else {
        return Ok(Charset::Utf8);
    };
    let name: String = header[pos + "charset=".len()..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ';')
        .collect();
    match name.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" | "ascii" | "us-ascii" | "charset" | "" => Ok(Charset::Utf8),
        "iso-8859-1" | "latin1" => Ok(Charset::Latin1),
        "iso-8859-15" | "latin9" => Ok(Charset::Latin9),
        other => Err(format!("unsupported charset `{other}` in the header entry")),
    }
}
