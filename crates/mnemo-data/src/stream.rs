//! Labelled token streams: inputs with aligned targets, as tokens and as ids.

use std::collections::HashMap;

use crate::{DataError, NO_LABEL_ID, Vocab};

/// One generated example (or several concatenated) as tokens: `labels[i]` is what a model that
/// has read `inputs[..=i]` must predict, or [`NO_LABEL`](crate::NO_LABEL) if position `i` is
/// not scored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelledTokens<'a> {
    /// Input tokens.
    pub inputs: Vec<&'a str>,
    /// Label tokens, aligned with `inputs`.
    pub labels: Vec<&'a str>,
}

impl<'a> LabelledTokens<'a> {
    /// Appends one input token with its label.
    pub fn push(&mut self, input: &'a str, label: &'a str) {
        self.inputs.push(input);
        self.labels.push(label);
    }

    /// Number of positions.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether there are no positions.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

/// A split of a task as ids: `inputs[i]` is fed to the model, `targets[i]` is scored against
/// its output at position `i` unless it equals [`NO_LABEL_ID`].
///
/// Both vectors have the same length (checked by [`LabelledStream::new`] and relied on by
/// [`StreamBatcher`](crate::StreamBatcher)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelledStream {
    /// Input token ids.
    pub inputs: Vec<u32>,
    /// Target token ids; [`NO_LABEL_ID`] means "not scored".
    pub targets: Vec<u32>,
}

impl LabelledStream {
    /// Pairs inputs with targets, checking that their lengths agree.
    pub fn new(inputs: Vec<u32>, targets: Vec<u32>) -> Result<Self, DataError> {
        if inputs.len() != targets.len() {
            return Err(DataError::LengthMismatch {
                inputs: inputs.len(),
                targets: targets.len(),
            });
        }
        Ok(Self { inputs, targets })
    }

    /// Encodes labelled tokens with `vocab`.
    pub fn encode(tokens: &LabelledTokens<'_>, vocab: &Vocab) -> Result<Self, DataError> {
        Self::new(vocab.encode(&tokens.inputs)?, vocab.encode(&tokens.labels)?)
    }

    /// A language-modelling stream over `ids`: position `i` reads `ids[i]` and predicts
    /// `ids[i + 1]`, so `ids.len() - 1` positions, every one of them scored (the last id is only
    /// a target). Holds the ids twice (inputs and targets), 8 bytes per token.
    pub fn next_token(ids: &[u32]) -> Self {
        match ids {
            [] | [_] => Self::default(),
            _ => Self {
                inputs: ids[..ids.len() - 1].to_vec(),
                targets: ids[1..].to_vec(),
            },
        }
    }

    /// Number of positions.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether the stream is empty.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Number of scored positions (targets other than [`NO_LABEL_ID`]).
    pub fn scored_positions(&self) -> usize {
        self.targets.iter().filter(|&&t| t != NO_LABEL_ID).count()
    }
}

/// Collects the examples of several splits as provisional ids, then builds one sorted
/// [`Vocab`] over everything seen and remaps the ids to it.
///
/// This keeps generation at four bytes per token instead of one string per token.
#[derive(Debug, Default)]
pub(crate) struct StreamCollector {
    tokens: Vec<String>,
    provisional: HashMap<String, u32>,
    splits: Vec<(Vec<u32>, Vec<u32>)>,
}

impl StreamCollector {
    /// Starts a new split; following [`StreamCollector::push`] calls append to it.
    pub(crate) fn start_split(&mut self) {
        self.splits.push((Vec::new(), Vec::new()));
    }

    /// Appends an example to the current split.
    pub(crate) fn push(&mut self, example: &LabelledTokens<'_>) {
        let mut inputs = Vec::with_capacity(example.len());
        let mut labels = Vec::with_capacity(example.len());
        for (&input, &label) in example.inputs.iter().zip(&example.labels) {
            inputs.push(self.provisional_id(input));
            labels.push(self.provisional_id(label));
        }
        let (split_inputs, split_labels) = self
            .splits
            .last_mut()
            .expect("start_split called before push");
        split_inputs.extend(inputs);
        split_labels.extend(labels);
    }

    fn provisional_id(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.provisional.get(token) {
            return id;
        }
        let id = self.tokens.len() as u32;
        self.tokens.push(token.to_owned());
        self.provisional.insert(token.to_owned(), id);
        id
    }

    /// Builds the vocabulary and the splits in the order they were started.
    pub(crate) fn finish(self) -> (Vocab, Vec<LabelledStream>) {
        let vocab = Vocab::build(&self.tokens);
        let remap: Vec<u32> = self
            .tokens
            .iter()
            .map(|t| vocab.id(t).expect("vocab built from these tokens"))
            .collect();
        let streams = self
            .splits
            .into_iter()
            .map(|(inputs, labels)| LabelledStream {
                inputs: inputs.into_iter().map(|id| remap[id as usize]).collect(),
                targets: labels.into_iter().map(|id| remap[id as usize]).collect(),
            })
            .collect();
        (vocab, streams)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(inputs: &'static str, labels: &'static str) -> LabelledTokens<'static> {
        LabelledTokens {
            inputs: inputs.split(' ').collect(),
            labels: labels.split(' ').collect(),
        }
    }

    #[test]
    fn collector_matches_direct_encoding() {
        let a = example("x = 3 ; print x ; END", "_ _ _ _ _ _ 3 _");
        let b = example("y = 9 ; END", "_ _ _ _ _");
        let mut collector = StreamCollector::default();
        collector.start_split();
        collector.push(&a);
        collector.start_split();
        collector.push(&b);
        collector.push(&a);
        let (vocab, streams) = collector.finish();
        assert_eq!(
            vocab,
            Vocab::build(a.inputs.iter().chain(&a.labels).chain(&b.inputs))
        );
        assert_eq!(streams.len(), 2);
        assert_eq!(streams[0], LabelledStream::encode(&a, &vocab).unwrap());
        let mut ba = b.clone();
        ba.inputs.extend(&a.inputs);
        ba.labels.extend(&a.labels);
        assert_eq!(streams[1], LabelledStream::encode(&ba, &vocab).unwrap());
        assert_eq!(streams[0].scored_positions(), 1);
        assert_eq!(streams[1].scored_positions(), 1);
    }

    #[test]
    fn next_token_shifts_targets_by_one() {
        let stream = LabelledStream::next_token(&[5, 6, 7, 0]);
        assert_eq!(stream.inputs, [5, 6, 7]);
        assert_eq!(stream.targets, [6, 7, 0]);
        assert_eq!(LabelledStream::next_token(&[3]).len(), 0);
    }

    #[test]
    fn new_rejects_length_mismatch() {
        let err = LabelledStream::new(vec![1, 2, 3], vec![0, 0]).unwrap_err();
        assert_eq!(
            err,
            DataError::LengthMismatch {
                inputs: 3,
                targets: 2
            }
        );
        assert!(LabelledStream::new(vec![1, 2], vec![0, 5]).is_ok());
    }
}
