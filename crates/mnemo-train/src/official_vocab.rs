//! The official code's vocabulary (facebookresearch/transformer-sequential, `data.py`'s
//! `Dictionary`), rebuilt from its data directory, and the row of each mnemo token in it: an
//! official checkpoint's embedding and output rows follow that dictionary, mnemo's follow its own
//! [`Vocab`], so `mnemo import official` / `mnemo export --format official` permute them.
//!
//! The official dictionary: `<unk>` is added first (count 0); then every whitespace-separated
//! word of `train.txt` and, when it exists, `train.txt.labels`, each line followed by `<eos>`, is
//! counted; indices go by count, largest first, ties in *reverse* order of first appearance
//! (Python's stable ascending sort, reversed). Its `<unk>` and `<eos>` are not mnemo tokens: their
//! rows are dropped on import (mnemo's softmax runs over its own tokens) and written back on
//! export with zero weights and an output bias of −1e4 (no probability).
//!
//! Byte corpora: the official enwik8 data is one decimal word per byte, so mnemo's byte token
//! for byte b is the official word `b` (its no-label token has no official row).
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use mnemo_data::Vocab;

use crate::error::TrainError;

/// Where each mnemo token's row is in the official dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficialRows {
    /// The official dictionary, index order (`idx2word`).
    pub official: Vec<String>,
    /// For mnemo id i, its official index, or `None` for a token the dictionary lacks (mnemo's
    /// no-label token `_` of a byte corpus).
    pub rows: Vec<Option<usize>>,
}

impl OfficialRows {
    /// The identity: mnemo's ids are the official indices (`vocab` tokens).
    pub fn identity(vocab: usize) -> Self {
        Self {
            official: (0..vocab).map(|i| i.to_string()).collect(),
            rows: (0..vocab).map(Some).collect(),
        }
    }

    /// The rows of `vocab`'s tokens in `official`; `bytes` for a byte corpus (token of byte b is
    /// the official word `b`). Tokens the dictionary lacks are an error naming them, unless the
    /// token is mnemo's no-label token of a byte corpus.
    pub fn of(vocab: &Vocab, official: Vec<String>, bytes: bool) -> Result<Self, String> {
        let index: HashMap<&str, usize> = official
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i))
            .collect();
        let mut missing = Vec::new();
        let rows = vocab
            .tokens()
            .iter()
            .enumerate()
            .map(|(id, token)| {
                let word = match bytes {
                    true if id == 0 => return None,
                    true => (id - 1).to_string(),
                    false => token.clone(),
                };
                let row = index.get(word.as_str()).copied();
                if row.is_none() {
                    missing.push(word);
                }
                row
            })
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} mnemo token(s) not in the official dictionary: {}",
                missing.len(),
                missing.join(" ")
            ));
        }
        Ok(Self { official, rows })
    }
}

/// The official dictionary of the data directory `dir` (see the [module docs](self)). An
/// unreadable `train.txt` is an error naming it.
pub fn official_dictionary(dir: &Path) -> Result<Vec<String>, TrainError> {
    let mut counts: Vec<(String, u64)> = vec![("<unk>".into(), 0)];
    let mut index: HashMap<String, usize> = HashMap::from([("<unk>".into(), 0)]);
    for name in ["train.txt", "train.txt.labels"] {
        let path = dir.join(name);
        if name.ends_with(".labels") && !path.exists() {
            continue;
        }
        let file =
            std::fs::File::open(&path).map_err(|e| TrainError::io(&path, "cannot read", e))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| TrainError::io(&path, "cannot read", e))?;
            for word in line.split_whitespace().chain(["<eos>"]) {
                let i = *index.entry(word.to_string()).or_insert_with(|| {
                    counts.push((word.to_string(), 0));
                    counts.len() - 1
                });
                counts[i].1 += 1;
            }
        }
    }
    let mut order: Vec<usize> = (0..counts.len()).collect();
    // Descending count; ties: later first appearance first.
    order.sort_by(|&a, &b| counts[b].1.cmp(&counts[a].1).then(b.cmp(&a)));
    Ok(order.into_iter().map(|i| counts[i].0.clone()).collect())
}
