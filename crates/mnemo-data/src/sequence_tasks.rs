//! Copy and reverse: a random symbol sequence, a separator, then the sequence again
//! (copied or reversed), generated from a seed.
//!
//! # Format
//! An example of length `L` over `K` symbols (named `0`, `1`, …, `K-1`) is
//!
//! ```text
//! inputs:  s1 s2 … sL |  a1 a2 … aL END
//! labels:  _  _  … _  a1 a2 a3 … _  _
//! ```
//!
//! where `a` is `s` (copy) or `s` reversed (reverse) and `|` is [`SEPARATOR`]. The model reading
//! position `i` must predict label `i`: at the separator and at every answer position but the
//! last, that is the next answer token; everything else is [`NO_LABEL`] and not scored. `L` is
//! uniform in [`SequenceTaskConfig::min_len`]`..=`[`SequenceTaskConfig::max_len`] (fixed when
//! they are equal).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::split::SplitSizes;
use crate::{DataError, END, LabelledTokens, NO_LABEL, Split};

/// The token between a sequence and its answer.
pub const SEPARATOR: &str = "|";

/// Largest supported alphabet.
pub const MAX_SYMBOLS: usize = 1 << 20;

/// Which transformation the answer applies to the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequenceTaskKind {
    /// The answer repeats the sequence.
    Copy,
    /// The answer is the sequence reversed.
    Reverse,
}

/// Configuration of a copy or reverse task (the kind is chosen by
/// [`TaskConfig`](crate::TaskConfig)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SequenceTaskConfig {
    /// Alphabet size `K` (at least 2). Default 10.
    pub symbols: usize,
    /// Shortest sequence length (at least 1). Default 8.
    pub min_len: usize,
    /// Longest sequence length (at least `min_len`). Default 32.
    pub max_len: usize,
    /// Examples in the training split. Default 10 000.
    pub train_sequences: usize,
    /// Examples in the validation split. Default 1000.
    pub valid_sequences: usize,
    /// Examples in the test split. Default 1000.
    pub test_sequences: usize,
    /// Seed of the generator; splits use separate streams of it ([`Split::rng`]). Default 0.
    pub seed: u64,
}

impl Default for SequenceTaskConfig {
    fn default() -> Self {
        Self {
            symbols: 10,
            min_len: 8,
            max_len: 32,
            train_sequences: 10_000,
            valid_sequences: 1000,
            test_sequences: 1000,
            seed: 0,
        }
    }
}

impl SequenceTaskConfig {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), DataError> {
        if !(2..=MAX_SYMBOLS).contains(&self.symbols) {
            return Err(DataError::config(
                "data.symbols",
                format!("must be in 2..={MAX_SYMBOLS}, got {}", self.symbols),
            ));
        }
        DataError::require_positive("data.min_len", self.min_len)?;
        if self.max_len < self.min_len {
            return Err(DataError::config(
                "data.max_len",
                format!(
                    "must be at least data.min_len ({}), got {}",
                    self.min_len, self.max_len
                ),
            ));
        }
        self.split_sizes().validate()
    }

    /// Number of examples in `split`.
    pub fn sequences(&self, split: Split) -> usize {
        self.split_sizes().of(split)
    }

    fn split_sizes(&self) -> SplitSizes {
        let sizes = [
            self.train_sequences,
            self.valid_sequences,
            self.test_sequences,
        ];
        SplitSizes::new("sequences", sizes)
    }

    /// Builds the generator of `kind` examples (validates first).
    pub fn init(&self, kind: SequenceTaskKind) -> Result<SequenceTask, DataError> {
        self.validate()?;
        Ok(SequenceTask {
            kind,
            config: self.clone(),
            alphabet: (0..self.symbols).map(|s| s.to_string()).collect(),
        })
    }
}

/// A copy or reverse example generator: its config and symbol tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceTask {
    kind: SequenceTaskKind,
    config: SequenceTaskConfig,
    alphabet: Vec<String>,
}

impl SequenceTask {
    /// Copy or reverse.
    pub fn kind(&self) -> SequenceTaskKind {
        self.kind
    }

    /// The symbol tokens, indexed by symbol.
    pub fn alphabet(&self) -> &[String] {
        &self.alphabet
    }

    /// The examples of `split`, drawn from [`Split::rng`] of the config's seed.
    pub fn examples(&self, split: Split) -> impl Iterator<Item = LabelledTokens<'_>> + '_ {
        let mut rng = split.rng(self.config.seed);
        (0..self.config.sequences(split)).map(move |_| self.generate_example(&mut rng))
    }

    /// Draws one example: a uniform length, then uniform symbols.
    pub fn generate_example<R: Rng + ?Sized>(&self, rng: &mut R) -> LabelledTokens<'_> {
        let len = rng.random_range(self.config.min_len..=self.config.max_len);
        let symbols: Vec<usize> = (0..len)
            .map(|_| rng.random_range(0..self.alphabet.len()))
            .collect();
        self.example(&symbols)
    }

    /// The labelled example for a given sequence of symbols.
    ///
    /// # Panics
    /// If a symbol is outside the alphabet.
    pub fn example(&self, symbols: &[usize]) -> LabelledTokens<'_> {
        let sequence: Vec<&str> = symbols.iter().map(|&s| self.alphabet[s].as_str()).collect();
        let mut answer = sequence.clone();
        if self.kind == SequenceTaskKind::Reverse {
            answer.reverse();
        }
        let mut out = LabelledTokens::default();
        for &token in &sequence {
            out.push(token, NO_LABEL);
        }
        // Reading the separator or answer token j, the model must emit answer token j + 1.
        let next = answer.iter().copied().chain([NO_LABEL]);
        for (input, label) in [SEPARATOR]
            .into_iter()
            .chain(answer.iter().copied())
            .zip(next)
        {
            out.push(input, label);
        }
        out.push(END, NO_LABEL);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SequenceTaskConfig {
        SequenceTaskConfig {
            symbols: 5,
            min_len: 3,
            max_len: 6,
            train_sequences: 50,
            valid_sequences: 5,
            test_sequences: 5,
            seed: 1,
        }
    }

    fn words(s: &str) -> Vec<&str> {
        s.split(' ').collect()
    }

    #[test]
    fn copy_and_reverse_labels_by_hand() {
        let copy_task = small().init(SequenceTaskKind::Copy).unwrap();
        let reverse_task = small().init(SequenceTaskKind::Reverse).unwrap();
        let copy = copy_task.example(&[3, 1, 4]);
        assert_eq!(copy.inputs, words("3 1 4 | 3 1 4 END"));
        assert_eq!(copy.labels, words("_ _ _ 3 1 4 _ _"));
        let reverse = reverse_task.example(&[3, 1, 4]);
        assert_eq!(reverse.inputs, words("3 1 4 | 4 1 3 END"));
        assert_eq!(reverse.labels, words("_ _ _ 4 1 3 _ _"));
        let single = copy_task.example(&[2]);
        assert_eq!(single.inputs, words("2 | 2 END"));
        assert_eq!(single.labels, words("_ 2 _ _"));
    }

    #[test]
    fn generated_examples_are_well_formed_and_seeded() {
        for kind in [SequenceTaskKind::Copy, SequenceTaskKind::Reverse] {
            let task = small().init(kind).unwrap();
            let examples: Vec<_> = task.examples(Split::Train).collect();
            let mut lengths = std::collections::BTreeSet::new();
            for ex in &examples {
                let len = (ex.len() - 2) / 2;
                lengths.insert(len);
                assert!((3..=6).contains(&len), "{ex:?}");
                assert_eq!(ex.inputs[len], SEPARATOR);
                assert_eq!(ex.inputs.last(), Some(&END));
                let mut answer = ex.inputs[..len].to_vec();
                if kind == SequenceTaskKind::Reverse {
                    answer.reverse();
                }
                assert_eq!(ex.inputs[len + 1..2 * len + 1], answer[..]);
                assert_eq!(ex.labels[len..2 * len], answer[..]);
                assert_eq!(ex.labels.iter().filter(|&&l| l != NO_LABEL).count(), len);
            }
            assert_eq!(lengths.len(), 4, "every length in 3..=6 drawn");
            let again: Vec<_> = task.examples(Split::Train).collect();
            assert_eq!(examples, again);
            let reseeded = SequenceTaskConfig { seed: 2, ..small() }
                .init(kind)
                .unwrap();
            assert_ne!(
                examples,
                reseeded.examples(Split::Train).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn validate_names_the_field() {
        let bad = SequenceTaskConfig {
            max_len: 2,
            ..small()
        };
        let err = bad.init(SequenceTaskKind::Copy).unwrap_err();
        assert_eq!(
            err.to_string(),
            "data.max_len must be at least data.min_len (3), got 2"
        );
        let err = SequenceTaskConfig {
            symbols: 1,
            ..small()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().starts_with("data.symbols "), "{err}");
        let err = SequenceTaskConfig {
            min_len: 0,
            max_len: 0,
            ..small()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().starts_with("data.min_len "), "{err}");
        assert!(SequenceTaskConfig::default().validate().is_ok());
    }
}
