//! Dataset splits and the random stream each one is drawn from.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::DataError;

/// One of the three splits of a generated task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data (model selection, early stopping).
    Valid,
    /// Held-out test data.
    Test,
}

impl Split {
    /// All splits, in the order [`TaskData`](crate::TaskData) stores them.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// The ChaCha stream id of this split: 0, 1, 2.
    pub fn stream_id(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Valid => 1,
            Split::Test => 2,
        }
    }

    /// The name of this split in file names and config fields: `train`, `valid`, `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }

    /// The generator of this split for a task seed: `ChaCha8Rng` seeded with `seed`, on stream
    /// [`Split::stream_id`]. Splits of one seed are therefore independent draws, and each is
    /// reproducible on its own.
    pub fn rng(self, seed: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(self.stream_id());
        rng
    }
}

/// How many examples a generated task draws for each split, as its config sets them in the
/// fields `data.{split}_{noun}` (e.g. `data.train_programs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SplitSizes {
    /// What an example is called in the field names, e.g. `programs`.
    noun: &'static str,
    /// Examples per split, in [`Split::ALL`] order.
    sizes: [usize; 3],
}

impl SplitSizes {
    /// The sizes `[train, valid, test]` of fields named with `noun`.
    pub(crate) fn new(noun: &'static str, sizes: [usize; 3]) -> Self {
        Self { noun, sizes }
    }

    /// Examples in `split`.
    pub(crate) fn of(&self, split: Split) -> usize {
        self.sizes[split.stream_id() as usize]
    }

    /// Every split has at least one example; the error names the first empty one's field.
    pub(crate) fn validate(&self) -> Result<(), DataError> {
        for split in Split::ALL {
            let field = format!("data.{}_{}", split.name(), self.noun);
            DataError::require_positive(field, self.of(split))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    fn draw(split: Split, seed: u64) -> Vec<u32> {
        let mut rng = split.rng(seed);
        (0..16).map(|_| rng.random()).collect()
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        assert_eq!(draw(Split::Train, 7), draw(Split::Train, 7));
        assert_ne!(draw(Split::Train, 7), draw(Split::Valid, 7));
        assert_ne!(draw(Split::Valid, 7), draw(Split::Test, 7));
        assert_ne!(draw(Split::Train, 7), draw(Split::Train, 8));
        // Stream ids do not alias neighbouring seeds.
        assert_ne!(draw(Split::Valid, 7), draw(Split::Train, 8));
    }

    #[test]
    fn split_sizes_are_looked_up_and_the_first_empty_split_is_named() {
        let sizes = SplitSizes::new("programs", [5, 0, 0]);
        let looked_up = Split::ALL.map(|split| sizes.of(split));
        assert_eq!(looked_up, [5, 0, 0]);
        assert_eq!(
            sizes.validate().unwrap_err().to_string(),
            "data.valid_programs must be at least 1, got 0"
        );
        assert!(SplitSizes::new("sequences", [1, 1, 1]).validate().is_ok());
    }
}
