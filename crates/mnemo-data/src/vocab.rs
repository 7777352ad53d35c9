//! Word-level vocabulary shared by every generated task.
//!
//! A [`Vocab`] maps whitespace-free tokens to dense `u32` ids. It is built deterministically:
//! the special no-label token [`NO_LABEL`] always has id [`NO_LABEL_ID`] (0), and every other
//! token follows in sorted (byte-wise `str`) order, so the same token set always gives the same
//! ids. It serialises as `{"tokens": [...]}` so that a trainer can save it next to a run and
//! reload it; deserialisation checks the same invariants.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::DataError;

/// The label of a position that is not scored ("no label").
pub const NO_LABEL: &str = "_";

/// The id of [`NO_LABEL`] in every [`Vocab`].
pub const NO_LABEL_ID: u32 = 0;

/// A word-level vocabulary: ids are indices into a list of distinct tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VocabFile", into = "VocabFile")]
pub struct Vocab {
    tokens: Vec<String>,
    ids: HashMap<String, u32>,
}

/// Serialised form of a [`Vocab`]: the token list in id order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabFile {
    tokens: Vec<String>,
}

impl Vocab {
    /// Builds a vocabulary from a token stream (repetitions are fine).
    ///
    /// [`NO_LABEL`] comes first (id [`NO_LABEL_ID`]) whether or not it occurs in `tokens`;
    /// the other distinct tokens follow in sorted order.
    pub fn build<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut distinct = BTreeSet::new();
        for token in tokens {
            let token = token.as_ref();
            if token != NO_LABEL && !distinct.contains(token) {
                distinct.insert(token.to_owned());
            }
        }
        let list = std::iter::once(NO_LABEL.to_owned())
            .chain(distinct)
            .collect();
        Self::from_list(list).expect("distinct tokens with the no-label token first")
    }

    /// Checks the invariants of a token list and indexes it.
    pub(crate) fn from_list(tokens: Vec<String>) -> Result<Self, DataError> {
        match tokens.first() {
            Some(first) if first == NO_LABEL => {}
            Some(first) => {
                return Err(DataError::InvalidVocab(format!(
                    "the first token must be the no-label token `{NO_LABEL}`, got `{first}`"
                )));
            }
            None => return Err(DataError::InvalidVocab("no tokens".into())),
        }
        if u32::try_from(tokens.len()).is_err() {
            return Err(DataError::InvalidVocab(format!(
                "{} tokens exceed u32",
                tokens.len()
            )));
        }
        let mut ids = HashMap::with_capacity(tokens.len());
        for (id, token) in tokens.iter().enumerate() {
            if token.is_empty() || token.chars().any(char::is_whitespace) {
                return Err(DataError::InvalidVocab(format!(
                    "token {id} (`{token}`) is empty or contains whitespace"
                )));
            }
            if ids.insert(token.clone(), id as u32).is_some() {
                return Err(DataError::InvalidVocab(format!(
                    "token `{token}` appears twice"
                )));
            }
        }
        Ok(Self { tokens, ids })
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// The token with id `id`.
    ///
    /// # Panics
    /// If `id >= self.len()`; use [`Vocab::decode`] for a checked lookup.
    pub fn token(&self, id: u32) -> &str {
        &self.tokens[id as usize]
    }

    /// Number of tokens, specials included.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Always `false`: a vocabulary holds at least [`NO_LABEL`].
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// All tokens in id order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The id of [`NO_LABEL`], i.e. [`NO_LABEL_ID`]: targets with this id are not scored.
    pub fn no_label_id(&self) -> u32 {
        NO_LABEL_ID
    }

    /// Maps tokens to ids; the error names the first unknown token.
    pub fn encode<S: AsRef<str>>(&self, tokens: &[S]) -> Result<Vec<u32>, DataError> {
        tokens
            .iter()
            .map(|token| {
                let token = token.as_ref();
                self.id(token).ok_or_else(|| DataError::UnknownToken {
                    token: token.to_owned(),
                })
            })
            .collect()
    }

    /// Maps ids back to tokens; the error names the first id outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<Vec<&str>, DataError> {
        ids.iter()
            .map(|&id| {
                self.tokens
                    .get(id as usize)
                    .map(String::as_str)
                    .ok_or(DataError::UnknownId {
                        id,
                        len: self.len(),
                    })
            })
            .collect()
    }
}

impl TryFrom<VocabFile> for Vocab {
    type Error = DataError;

    fn try_from(file: VocabFile) -> Result<Self, DataError> {
        Self::from_list(file.tokens)
    }
}

impl From<Vocab> for VocabFile {
    fn from(vocab: Vocab) -> Self {
        Self {
            tokens: vocab.tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vocab {
        Vocab::build("x = 4 ; print x ; END 4 _".split(' '))
    }

    #[test]
    fn build_puts_no_label_first_then_sorted_distinct_tokens() {
        let vocab = sample();
        assert_eq!(vocab.tokens(), ["_", "4", ";", "=", "END", "print", "x"]);
        assert_eq!(vocab.no_label_id(), 0);
        assert_eq!(vocab.id(NO_LABEL), Some(NO_LABEL_ID));
        // Order of appearance does not matter.
        assert_eq!(Vocab::build(["x", "4", "x"]), Vocab::build(["4", "x"]));
    }

    #[test]
    fn encode_decode_round_trip() {
        let vocab = sample();
        let tokens = ["print", "x", ";", "_", "END"];
        let ids = vocab.encode(&tokens).unwrap();
        assert_eq!(ids, [5, 6, 2, 0, 4]);
        assert_eq!(vocab.decode(&ids).unwrap(), tokens);
        assert_eq!(vocab.token(6), "x");
    }

    #[test]
    fn unknown_token_and_id_are_named() {
        let vocab = sample();
        let err = vocab.encode(&["x", "zebra"]).unwrap_err();
        assert_eq!(
            err,
            DataError::UnknownToken {
                token: "zebra".into()
            }
        );
        assert!(err.to_string().contains("`zebra`"), "{err}");
        let err = vocab.decode(&[1, 99]).unwrap_err();
        assert!(err.to_string().contains("99"), "{err}");
    }

    #[test]
    fn serde_round_trip() {
        let vocab = sample();
        let json = serde_json::to_string(&vocab).unwrap();
        assert_eq!(json, r#"{"tokens":["_","4",";","=","END","print","x"]}"#);
        let back: Vocab = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vocab);
        assert_eq!(back.id("print"), Some(5));
    }

    #[test]
    fn deserialise_rejects_inconsistent_lists() {
        for bad in [
            r#"{"tokens":[]}"#,
            r#"{"tokens":["x","_"]}"#,
            r#"{"tokens":["_","x","x"]}"#,
            r#"{"tokens":["_","a b"]}"#,
            r#"{"tokens":["_"],"extra":1}"#,
        ] {
            assert!(
                serde_json::from_str::<Vocab>(bad).is_err(),
                "{bad} accepted"
            );
        }
    }
}
