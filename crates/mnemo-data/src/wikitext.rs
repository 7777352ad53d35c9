//! WikiText-103 / WikiText-2 word-level corpora: `wiki.{train,valid,test}.tokens`.
//!
//! The files are already tokenised: tokens are separated by whitespace and every line ends
//! with an `<eos>` token (blank lines too, as in the reference PyTorch and Transformer-XL
//! loaders). The vocabulary holds every token of the training file, plus `<eos>` and `<unk>`;
//! valid and test tokens outside it read as `<unk>`. The files are streamed line by line:
//! only the ids (`u32`) and the distinct tokens are kept in memory.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::token_files::{FirstSeen, open_reader, require_files};
use crate::{DataError, LabelledStream, Split, Vocab};

/// End-of-line token appended to every line.
pub const EOS: &str = "<eos>";

/// Token standing for words outside the vocabulary.
pub const UNK: &str = "<unk>";

/// Settings of a WikiText corpus (`task = "wikitext"` under `[data]`).
///
/// ```toml
/// [data]
/// task = "wikitext"
/// dir = "data/wikitext-mini"   # holds wiki.{train,valid,test}.tokens
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WikiTextConfig {
    /// Directory holding `wiki.train.tokens`, `wiki.valid.tokens` and `wiki.test.tokens`.
    /// Relative paths resolve against the current directory.
    pub dir: PathBuf,
}

/// The file of `split` in a WikiText directory: `wiki.<split>.tokens`.
pub fn wikitext_file(dir: &Path, split: Split) -> PathBuf {
    dir.join(format!("wiki.{}.tokens", split.name()))
}

/// Calls `each` on every token of `path`, `<eos>` after each line, reading line by line.
fn for_each_token(path: &Path, field: &str, mut each: impl FnMut(&str)) -> Result<(), DataError> {
    let mut reader = open_reader(path, field)?;
    let mut line = String::new();
    let mut number = 0usize;
    loop {
        line.clear();
        number += 1;
        let read = reader
            .read_line(&mut line)
            .map_err(|e| DataError::file(field, path, format!("line {number}: {e}")))?;
        if read == 0 {
            return Ok(());
        }
        line.split_whitespace().for_each(&mut each);
        each(EOS);
    }
}

/// Loads a WikiText directory: the vocabulary of the training file and the three next-token
/// streams (`field` names the config field in errors, e.g. `data.dir`).
pub fn load_wikitext(dir: &Path, field: &str) -> Result<(Vocab, [LabelledStream; 3]), DataError> {
    require_files(Split::ALL.map(|split| wikitext_file(dir, split)), field)?;
    let mut seen = FirstSeen::default();
    let mut train_ids: Vec<u32> = Vec::new();
    for_each_token(&wikitext_file(dir, Split::Train), field, |token| {
        train_ids.push(seen.id(token));
    })?;
    let vocab = seen.into_vocab(&[EOS, UNK], train_ids.iter_mut());
    let unk = vocab
        .id(UNK)
        .expect("<unk> is in every WikiText vocabulary");
    let mut streams = vec![LabelledStream::next_token(&train_ids)];
    drop(train_ids);
    for split in [Split::Valid, Split::Test] {
        let mut ids = Vec::new();
        for_each_token(&wikitext_file(dir, split), field, |token| {
            ids.push(vocab.id(token).unwrap_or(unk));
        })?;
        streams.push(LabelledStream::next_token(&ids));
    }
    let streams: [LabelledStream; 3] = streams.try_into().expect("three splits");
    Ok((vocab, streams))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAIN: &str =
        " \n = Valkyria = \n \n The game 's plot @-@ line , <unk> . \n The game . \n";
    const VALID: &str = " The plot of Zork . \n";
    const TEST: &str = " = Zork = \n";

    fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn all() -> tempfile::TempDir {
        fixture(&[
            ("wiki.train.tokens", TRAIN),
            ("wiki.valid.tokens", VALID),
            ("wiki.test.tokens", TEST),
        ])
    }

    fn decode(vocab: &Vocab, stream: &LabelledStream) -> Vec<String> {
        let mut ids = stream.inputs.clone();
        ids.extend(stream.targets.last());
        vocab
            .decode(&ids)
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn eos_per_line_vocab_from_train_and_unk_elsewhere() {
        let dir = all();
        let (vocab, [train, valid, test]) = load_wikitext(dir.path(), "data.dir").unwrap();
        let expected: Vec<&str> = "_ 's , . <eos> <unk> = @-@ The Valkyria game line plot"
            .split(' ')
            .collect();
        assert_eq!(vocab.tokens(), expected);
        // 5 lines (2 of them blank " ") + 15 words = 20 tokens, 19 positions.
        assert_eq!(train.len(), 19);
        assert_eq!(
            decode(&vocab, &train).join(" "),
            "<eos> = Valkyria = <eos> <eos> The game 's plot @-@ line , <unk> . <eos> The game . <eos>"
        );
        assert_eq!(
            decode(&vocab, &valid).join(" "),
            "The plot <unk> <unk> . <eos>",
            "`of` and `Zork` are not in train"
        );
        assert_eq!(decode(&vocab, &test).join(" "), "= <unk> = <eos>");
        assert_eq!(
            valid.scored_positions(),
            valid.len(),
            "every position is scored"
        );
        assert!(valid.targets.iter().all(|&t| t != crate::NO_LABEL_ID));
    }

    #[test]
    fn missing_split_file_is_named() {
        let dir = fixture(&[("wiki.train.tokens", TRAIN), ("wiki.test.tokens", TEST)]);
        let err = load_wikitext(dir.path(), "data.dir")
            .unwrap_err()
            .to_string();
        let path = dir.path().join("wiki.valid.tokens");
        assert!(
            err.starts_with(&format!("data.dir: {}: ", path.display())),
            "{err}"
        );
        assert!(err.contains("setup-data.sh"), "{err}");
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_file_and_line() {
        let dir = all();
        std::fs::write(dir.path().join("wiki.test.tokens"), b" ok \n bad \xff \n").unwrap();
        let err = load_wikitext(dir.path(), "data.dir")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wiki.test.tokens") && err.contains("line 2"),
            "{err}"
        );
    }
}
