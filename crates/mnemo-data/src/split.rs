//! Dataset splits and the random stream each one is drawn from.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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

    /// The generator of this split for a task seed: `ChaCha8Rng` seeded with `seed`, on stream
    /// [`Split::stream_id`]. Splits of one seed are therefore independent draws, and each is
    /// reproducible on its own.
    pub fn rng(self, seed: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(self.stream_id());
        rng
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
}
