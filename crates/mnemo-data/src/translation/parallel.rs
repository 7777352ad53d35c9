//! Line-aligned parallel text: the `[data]` settings of a translation experiment and the
//! reader of `{split}.{src}` / `{split}.{tgt}` files (or WMT `.sgm` files).

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::sgm;
use super::subword::SubwordTokenizer;
use crate::{DataError, Split};

/// Settings of a translation corpus (the fields under `[data]` next to `task = "translation"`).
///
/// ```toml
/// [data]
/// task = "translation"
/// dir = "data/translation/en-de"   # holds {train,valid,test}.{en,de}
/// src = "en"
/// tgt = "de"
/// vocab_size = 8000                # joint BPE over both sides of train
/// min_frequency = 2
/// max_len = 64                     # subwords per side; longer train pairs are dropped
/// max_train_pairs = 50000          # optional: a seeded sample of the training pairs
/// seed = 1
/// ```
///
/// The pipeline these settings drive: read the three splits ([`read_parallel`]); if
/// `max_train_pairs` is set, keep a seeded random sample of that many training pairs, in file
/// order ([`sample_pairs`], applied to the pairs as read, before tokenizer training and before
/// the length filter, so the kept count can end up below `max_train_pairs`); train one joint
/// BPE ([`SubwordTokenizer::train`]) on the source and target sides of those training pairs;
/// encode; drop training pairs with a side longer than `max_len` subwords
/// ([`drop_long_pairs`](super::drop_long_pairs), counted and reported). Valid and test pairs are
/// never dropped: they are truncated to `max_len` for the loss only
/// ([`truncate_pairs`](super::truncate_pairs)); decoding and BLEU use the full source and the
/// untouched reference text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelConfig {
    /// Directory holding `{train,valid,test}.{src}` and `.{tgt}` (or `{split}.{lang}.sgm`).
    /// Relative paths resolve against the current directory.
    pub dir: PathBuf,
    /// Source language code, the file extension of source files (e.g. `en`).
    pub src: String,
    /// Target language code, the file extension of target files (e.g. `de`).
    pub tgt: String,
    /// Size of the joint subword vocabulary, the four specials and 256 byte symbols included.
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    /// A merge is learnt only if its pair occurs at least this many times.
    #[serde(default = "default_min_frequency")]
    pub min_frequency: u64,
    /// Longest side, in subwords (no BOS/EOS counted), of a training pair that is kept.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Train on a seeded random sample of this many training pairs (kept in file order);
    /// all pairs when absent.
    #[serde(default)]
    pub max_train_pairs: Option<usize>,
    /// Seed of the training-pair sample and of the batch order.
    #[serde(default)]
    pub seed: u64,
}

fn default_vocab_size() -> usize {
    8000
}

fn default_min_frequency() -> u64 {
    2
}

fn default_max_len() -> usize {
    64
}

impl ParallelConfig {
    /// A config with the defaults for every optional field.
    pub fn new(dir: impl Into<PathBuf>, src: impl Into<String>, tgt: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            src: src.into(),
            tgt: tgt.into(),
            vocab_size: default_vocab_size(),
            min_frequency: default_min_frequency(),
            max_len: default_max_len(),
            max_train_pairs: None,
            seed: 0,
        }
    }

    /// Checks every field; errors name it as `data.<field>`.
    pub fn validate(&self) -> Result<(), DataError> {
        for (field, lang) in [("data.src", &self.src), ("data.tgt", &self.tgt)] {
            let ok = !lang.is_empty()
                && lang
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(DataError::config(
                    field,
                    format!(
                        "must be a language code made of ASCII letters, digits, `-` or `_` \
                         (it is a file extension), got {lang:?}"
                    ),
                ));
            }
        }
        if self.src == self.tgt {
            return Err(DataError::config(
                "data.tgt",
                format!("must differ from data.src, both are {:?}", self.src),
            ));
        }
        let min_vocab = SubwordTokenizer::MIN_VOCAB_SIZE;
        if self.vocab_size < min_vocab || self.vocab_size > u32::MAX as usize {
            return Err(DataError::config(
                "data.vocab_size",
                format!(
                    "must be at least {min_vocab} (4 specials + 256 byte symbols + 1 merge), \
                     got {}",
                    self.vocab_size
                ),
            ));
        }
        DataError::require_positive("data.min_frequency", self.min_frequency)?;
        DataError::require_positive("data.max_len", self.max_len)?;
        if self.max_train_pairs == Some(0) {
            return Err(DataError::config(
                "data.max_train_pairs",
                "must be at least 1 when given, got 0 (leave it out to use every pair)",
            ));
        }
        Ok(())
    }
}

/// The name of a split as used in file names: `train`, `valid`, `test`.
///
/// The same as [`Split::name`].
pub fn split_name(split: Split) -> &'static str {
    split.name()
}

/// The plain-text file of one side of a split: `dir/{split}.{lang}`.
pub fn parallel_file(dir: &Path, split: Split, lang: &str) -> PathBuf {
    dir.join(format!("{}.{lang}", split_name(split)))
}

/// Reads the aligned pairs of `split` from `dir`: line `i` of `{split}.{src}` with line `i` of
/// `{split}.{tgt}`.
///
/// A side whose plain file is missing is read from `{split}.{lang}.sgm` if that exists (the
/// text of its `<seg>` elements, see [`sgm`]). Lines are kept as written, except that a
/// trailing `\r` is removed; the file's final newline does not start an extra line.
///
/// Errors ([`DataError::File`] with field `data.dir`) name the missing file, the two files
/// and their line counts when these differ, or the file and line that is not UTF-8.
pub fn read_parallel(
    dir: &Path,
    src: &str,
    tgt: &str,
    split: Split,
) -> Result<Vec<(String, String)>, DataError> {
    let (src_path, src_lines) = read_side(dir, split, src)?;
    let (tgt_path, tgt_lines) = read_side(dir, split, tgt)?;
    if src_lines.len() != tgt_lines.len() {
        return Err(DataError::file(
            "data.dir",
            &src_path,
            format!(
                "has {} segments but {} has {}; the two sides must be line-aligned",
                src_lines.len(),
                tgt_path.display(),
                tgt_lines.len()
            ),
        ));
    }
    Ok(src_lines.into_iter().zip(tgt_lines).collect())
}

/// The lines of a one-sentence-per-line text file (a side of parallel text, or a file of
/// translations), read as [`read_parallel`] reads a plain file: a trailing `\r` removed, no
/// extra line after the final newline.
///
/// Errors ([`DataError::File`] with field `data.dir`) name the file, and the line that is not
/// UTF-8.
pub fn read_lines(path: &Path) -> Result<Vec<String>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io("data.dir", path, &e))?;
    utf8_lines(path, &bytes)
}

/// Reads one side: the plain file, else the `.sgm` file; returns the path read and its lines.
fn read_side(dir: &Path, split: Split, lang: &str) -> Result<(PathBuf, Vec<String>), DataError> {
    let plain = parallel_file(dir, split, lang);
    match std::fs::read(&plain) {
        Ok(bytes) => {
            let lines = utf8_lines(&plain, &bytes)?;
            Ok((plain, lines))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let sgm_path = dir.join(format!("{}.{lang}.sgm", split_name(split)));
            if !sgm_path.is_file() {
                let reason = format!(
                    "{e} (nor is there {}); run scripts/setup-data.sh or fix data.dir",
                    sgm_path.display()
                );
                return Err(DataError::file("data.dir", &plain, reason));
            }
            let bytes =
                std::fs::read(&sgm_path).map_err(|e| DataError::io("data.dir", &sgm_path, &e))?;
            let text = utf8_lines(&sgm_path, &bytes)?.join("\n");
            let segs =
                sgm::segments(&text).map_err(|m| DataError::file("data.dir", &sgm_path, m))?;
            Ok((sgm_path, segs))
        }
        Err(e) => Err(DataError::io("data.dir", &plain, &e)),
    }
}

/// Splits a file's bytes into UTF-8 lines (no final empty line, trailing `\r` removed).
fn utf8_lines(path: &Path, bytes: &[u8]) -> Result<Vec<String>, DataError> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            std::str::from_utf8(line).map(str::to_owned).map_err(|e| {
                DataError::file(
                    "data.dir",
                    path,
                    format!("line {}: invalid UTF-8 at byte {}", i + 1, e.valid_up_to()),
                )
            })
        })
        .collect()
}

/// A seeded random sample of `n` items, kept in their original order; all items when `n` is
/// `None` or at least `items.len()`.
///
/// The sample depends only on `items.len()`, `n` and `seed` (ChaCha8), so the same
/// `max_train_pairs` and `seed` pick the same line numbers on every run.
pub fn sample_pairs<T>(items: Vec<T>, n: Option<usize>, seed: u64) -> Vec<T> {
    let Some(n) = n.filter(|&n| n < items.len()) else {
        return items;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut keep = vec![false; items.len()];
    for i in rand::seq::index::sample(&mut rng, items.len(), n) {
        keep[i] = true;
    }
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, k)| k.then_some(item))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_seeded_ordered_and_sized() {
        let items: Vec<usize> = (0..100).collect();
        let a = sample_pairs(items.clone(), Some(10), 7);
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "kept in order: {a:?}");
        assert_eq!(a, sample_pairs(items.clone(), Some(10), 7));
        assert_ne!(a, sample_pairs(items.clone(), Some(10), 8));
        assert_eq!(sample_pairs(items.clone(), Some(1000), 7), items);
        assert_eq!(sample_pairs(items.clone(), None, 7), items);
    }

    #[test]
    fn validate_names_fields() {
        let ok = ParallelConfig::new("d", "en", "de");
        ok.validate().unwrap();
        let cases: [(&str, ParallelConfig); 6] = [
            (
                "data.src",
                ParallelConfig {
                    src: "e n".into(),
                    ..ok.clone()
                },
            ),
            (
                "data.tgt",
                ParallelConfig {
                    tgt: "en".into(),
                    ..ok.clone()
                },
            ),
            (
                "data.vocab_size",
                ParallelConfig {
                    vocab_size: 100,
                    ..ok.clone()
                },
            ),
            (
                "data.min_frequency",
                ParallelConfig {
                    min_frequency: 0,
                    ..ok.clone()
                },
            ),
            (
                "data.max_len",
                ParallelConfig {
                    max_len: 0,
                    ..ok.clone()
                },
            ),
            (
                "data.max_train_pairs",
                ParallelConfig {
                    max_train_pairs: Some(0),
                    ..ok.clone()
                },
            ),
        ];
        for (field, config) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.starts_with(field), "{field}: {err}");
        }
    }
}
