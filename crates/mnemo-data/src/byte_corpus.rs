//! Byte-level corpora in the enwik8 format: one file of raw bytes (or a `.zip` holding it),
//! split 90% / 5% / 5% into train / valid / test, one token per byte.
//!
//! The standard enwik8 split (first 90,000,000 bytes for training, then 5,000,000 for
//! validation, the last 5,000,000 for test) is exactly [`byte_split_ranges`] of its
//! 100,000,000 bytes; any smaller file is cut in the same proportions.

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{DataError, LabelledStream, NO_LABEL, Split, Vocab};

/// Settings of a byte corpus (`task = "bytes"` under `[data]`).
///
/// ```toml
/// [data]
/// task = "bytes"
/// path = "data/enwik8-mini/enwik8"   # or the 100 MB enwik8, or enwik8.zip
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteCorpusConfig {
    /// The corpus file: raw bytes, or a zip archive holding exactly one file. Relative paths
    /// resolve against the current directory.
    pub path: PathBuf,
}

/// Id of byte `b` in [`byte_vocab`]: `b + 1` (id 0 is the no-label token, never a byte).
pub fn byte_id(b: u8) -> u32 {
    u32::from(b) + 1
}

/// The name of byte `b` in [`byte_vocab`]: printable ASCII other than `_` stands for itself,
/// every other byte is written `<0xNN>` (upper-case hex).
pub fn byte_token(b: u8) -> String {
    if b.is_ascii_graphic() && b != b'_' {
        char::from(b).to_string()
    } else {
        format!("<0x{b:02X}>")
    }
}

/// The vocabulary of every byte corpus: the no-label token, then the 256 bytes in order
/// (257 tokens; byte `b` has id [`byte_id`]`(b)` and name [`byte_token`]`(b)`).
pub fn byte_vocab() -> Vocab {
    let tokens = std::iter::once(NO_LABEL.to_owned())
        .chain((0..=255u8).map(byte_token))
        .collect();
    Vocab::from_list(tokens).expect("byte names are distinct and whitespace-free")
}

/// The train, valid and test byte ranges of a corpus of `len` bytes: `[0, 0.9 len)`,
/// `[0.9 len, 0.95 len)`, `[0.95 len, len)`, with the cut points rounded down.
pub fn byte_split_ranges(len: usize) -> [Range<usize>; 3] {
    let len64 = len as u64;
    let train_end = (len64 * 9 / 10) as usize;
    let valid_end = train_end + len / 20;
    [0..train_end, train_end..valid_end, valid_end..len]
}

/// Reads a byte corpus: the file itself, or the single member of a zip archive (recognised by
/// its `PK\x03\x04` signature). Errors name `field` and the path.
pub fn read_byte_file(path: &Path, field: &str) -> Result<Vec<u8>, DataError> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(field, path, &e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| DataError::io(field, path, &e))?;
    if !bytes.starts_with(b"PK\x03\x04") {
        return Ok(bytes);
    }
    let bad = |reason: String| DataError::file(field, path, reason);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes))
        .map_err(|e| bad(format!("not a readable zip archive: {e}")))?;
    let files: Vec<usize> = (0..archive.len())
        .filter(|&i| archive.by_index_raw(i).is_ok_and(|m| m.is_file()))
        .collect();
    let [index] = files[..] else {
        return Err(bad(format!(
            "a zip corpus must hold exactly one file, found {}",
            files.len()
        )));
    };
    let mut member = archive
        .by_index(index)
        .map_err(|e| bad(format!("zip member {index}: {e}")))?;
    let name = member.name().to_owned();
    let expected = member.size();
    let mut out = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    member
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("zip member `{name}` is corrupt or truncated: {e}")))?;
    if out.len() as u64 != expected {
        return Err(bad(format!(
            "zip member `{name}` is truncated: {} of {expected} bytes",
            out.len()
        )));
    }
    Ok(out)
}

/// The three next-byte streams of `bytes` cut by [`byte_split_ranges`]; ids by [`byte_id`].
pub fn byte_streams(bytes: &[u8]) -> [LabelledStream; 3] {
    let ranges = byte_split_ranges(bytes.len());
    Split::ALL.map(|split| {
        let range = ranges[split.stream_id() as usize].clone();
        let ids: Vec<u32> = bytes[range].iter().map(|&b| byte_id(b)).collect();
        LabelledStream::next_token(&ids)
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn enwik8_split_is_90m_5m_5m_and_small_files_keep_the_proportions() {
        let [a, b, c] = byte_split_ranges(100_000_000);
        assert_eq!(
            (a, b, c),
            (
                0..90_000_000,
                90_000_000..95_000_000,
                95_000_000..100_000_000
            )
        );
        let [a, b, c] = byte_split_ranges(1000);
        assert_eq!((a, b, c), (0..900, 900..950, 950..1000));
        // 6,089,746 bytes (the enwik8-mini stand-in).
        let [a, b, c] = byte_split_ranges(6_089_746);
        assert_eq!((a.len(), b.len(), c.len()), (5_480_771, 304_487, 304_488));
        for len in [0, 1, 19, 20, 21, 999, 12_345] {
            let [a, b, c] = byte_split_ranges(len);
            assert_eq!(
                (a.end, b.start, b.end, c.start, c.end),
                (b.start, a.end, c.start, b.end, len)
            );
            assert_eq!(a.len(), len * 9 / 10, "len {len}");
            assert_eq!(b.len(), len / 20, "len {len}");
        }
    }

    #[test]
    fn byte_vocab_maps_byte_b_to_id_b_plus_one() {
        let vocab = byte_vocab();
        assert_eq!(vocab.len(), 257);
        assert_eq!(vocab.id(NO_LABEL), Some(0));
        for b in 0..=255u8 {
            assert_eq!(vocab.id(&byte_token(b)), Some(byte_id(b)), "byte {b}");
        }
        assert_eq!(byte_token(b'A'), "A");
        assert_eq!(byte_token(b'_'), "<0x5F>");
        assert_eq!(byte_token(b' '), "<0x20>");
        // Serialises and reloads like any vocabulary.
        let json = serde_json::to_string(&vocab).unwrap();
        assert_eq!(serde_json::from_str::<Vocab>(&json).unwrap(), vocab);
    }

    #[test]
    fn streams_cover_each_split_and_predict_the_next_byte() {
        let bytes: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        let [train, valid, test] = byte_streams(&bytes);
        assert_eq!((train.len(), valid.len(), test.len()), (179, 9, 9));
        assert_eq!(train.inputs[0], byte_id(bytes[0]));
        assert_eq!(train.targets[178], byte_id(bytes[179]));
        assert_eq!(valid.inputs[0], byte_id(bytes[180]));
        assert_eq!(test.targets[8], byte_id(bytes[199]));
        assert_eq!(test.scored_positions(), 9, "every position is scored");
    }

    fn zip_of(name: &str, content: &[u8]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut writer = zip::ZipWriter::new(&mut buf);
        let options =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        writer.start_file(name, options).unwrap();
        writer.write_all(content).unwrap();
        writer.finish().unwrap();
        drop(writer);
        buf.into_inner()
    }

    #[test]
    fn reads_raw_files_and_zip_members_alike() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = b"<mediawiki><page><title>A</title></page></mediawiki>\n".repeat(40);
        let raw = dir.path().join("enwik8");
        std::fs::write(&raw, &content).unwrap();
        let zipped = dir.path().join("enwik8.zip");
        std::fs::write(&zipped, zip_of("enwik8", &content)).unwrap();
        assert_eq!(read_byte_file(&raw, "data.path").unwrap(), content);
        assert_eq!(read_byte_file(&zipped, "data.path").unwrap(), content);
    }

    #[test]
    fn missing_and_truncated_files_are_errors_naming_field_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = read_byte_file(&missing, "data.path")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("data.path: {}: ", missing.display())),
            "{err}"
        );
        assert!(err.contains("setup-data.sh"), "{err}");

        let content: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 97) as u8).collect();
        let whole = zip_of("enwik8", &content);
        // Cut the archive inside the member's data: no central directory is left.
        let cut = dir.path().join("cut.zip");
        std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
        let err = read_byte_file(&cut, "data.path").unwrap_err().to_string();
        assert!(
            err.contains(&cut.display().to_string()) && err.contains("zip"),
            "{err}"
        );
        // Corrupt the member's compressed bytes but keep the directory: the CRC check fails.
        let mut corrupt = whole.clone();
        for byte in &mut corrupt[40..60] {
            *byte ^= 0x5A;
        }
        let bad = dir.path().join("bad.zip");
        std::fs::write(&bad, &corrupt).unwrap();
        let err = read_byte_file(&bad, "data.path").unwrap_err().to_string();
        assert!(
            err.contains(&bad.display().to_string()) && err.contains("`enwik8`"),
            "{err}"
        );
    }
}
