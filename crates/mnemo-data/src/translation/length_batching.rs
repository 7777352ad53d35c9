//! Token-budget batches of similar-length sentence pairs (fairseq's `--max-tokens`).
//!
//! Pairs are sorted by padded length and cut greedily into batches whose
//! `rows × max(src_len, tgt_len)` stays within `max_tokens`, so little compute goes to padding.
//! The batches are fixed once; training visits them in a fresh seeded order each epoch
//! ([`PairBatcher::new`]), evaluation in length order ([`PairBatcher::in_order`]), and
//! [`PairBatch::ids`] gives back each row's index in the input.
//!
//! Layout of one batch (row-major plain vectors; the trainer builds tensors):
//!
//! ```text
//! src     = x1 x2 x3 PAD        (source subwords, no BOS/EOS)
//! tgt_in  = BOS y1 y2 PAD       (decoder input)
//! tgt_out = y1  y2 EOS PAD      (next-token labels; PAD = ignored)
//! ```

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::subword::SubwordTokenizer;
use crate::DataError;

const PAD: u32 = SubwordTokenizer::PAD;
const BOS: u32 = SubwordTokenizer::BOS;
const EOS: u32 = SubwordTokenizer::EOS;

/// An encoded sentence pair: (source ids, target ids), neither with BOS/EOS.
pub type EncodedPair = (Vec<u32>, Vec<u32>);

/// One batch of padded pairs.
///
/// # Shapes
/// - `src`: `[rows, src_len]` row-major, PAD-padded on the right
/// - `tgt_in`, `tgt_out`: `[rows, tgt_len]` row-major, PAD-padded on the right;
///   `tgt_len` is the longest target + 1 (for BOS / EOS)
/// - `ids`: `[rows]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairBatch {
    /// Number of pairs.
    pub rows: usize,
    /// Columns of `src`: the longest source in the batch.
    pub src_len: usize,
    /// Columns of `tgt_in` / `tgt_out`: the longest target in the batch, plus one.
    pub tgt_len: usize,
    /// Source ids, `rows × src_len`.
    pub src: Vec<u32>,
    /// Decoder inputs: BOS then the target, `rows × tgt_len`.
    pub tgt_in: Vec<u32>,
    /// Labels: the target then EOS, `rows × tgt_len`.
    pub tgt_out: Vec<u32>,
    /// Index, in the pairs the batcher was built from, of each row's pair.
    pub ids: Vec<usize>,
    /// Non-PAD labels in `tgt_out` (Σ target length + 1): the loss normaliser.
    pub n_tgt_tokens: usize,
}

/// Where a [`PairBatcher`] stands: (epoch, index of the next batch within the epoch).
pub type BatchPosition = (u64, usize);

/// Serves token-budget batches of encoded pairs, cycling through epochs forever.
#[derive(Debug, Clone)]
pub struct PairBatcher {
    pairs: Vec<EncodedPair>,
    /// Pair indices of each batch, in length order.
    batches: Vec<Vec<usize>>,
    max_tokens: usize,
    /// `Some(seed)`: shuffle the batch order per epoch; `None`: length order.
    seed: Option<u64>,
    epoch: u64,
    index: usize,
    /// Batch order of `epoch`.
    order: Vec<usize>,
}

/// The padded length a pair costs in a batch: `max(src, tgt + 1)`.
fn cost((src, tgt): &EncodedPair) -> usize {
    src.len().max(tgt.len() + 1)
}

impl PairBatcher {
    /// A training batcher: batches of at most `max_tokens` padded tokens
    /// (`rows × max(src_len, tgt_len) ≤ max_tokens`), visited in a new order every epoch
    /// (ChaCha8 seeded with `seed`, stream `epoch`).
    ///
    /// Errors when `pairs` is empty, a source is empty, or one pair alone does not fit in
    /// `max_tokens` (drop long pairs first, [`drop_long_pairs`]).
    pub fn new(pairs: Vec<EncodedPair>, max_tokens: usize, seed: u64) -> Result<Self, DataError> {
        if let Some((i, pair)) = pairs.iter().enumerate().find(|(_, p)| cost(p) > max_tokens) {
            return Err(DataError::InvalidArgument {
                name: "max_tokens",
                reason: format!(
                    "is {max_tokens} but pair {i} alone needs {} (source {} and target {} + 1 \
                     subwords); raise max_tokens or lower data.max_len",
                    cost(pair),
                    pair.0.len(),
                    pair.1.len()
                ),
            });
        }
        Self::build(pairs, max_tokens, Some(seed))
    }

    /// An evaluation batcher: the same length-sorted batches, always in the same order (no
    /// shuffle); a pair longer than `max_tokens` gets a batch of its own instead of an error.
    /// Put results back in input order with [`PairBatch::ids`].
    pub fn in_order(pairs: Vec<EncodedPair>, max_tokens: usize) -> Result<Self, DataError> {
        Self::build(pairs, max_tokens, None)
    }

    fn build(
        pairs: Vec<EncodedPair>,
        max_tokens: usize,
        seed: Option<u64>,
    ) -> Result<Self, DataError> {
        if max_tokens == 0 {
            return Err(DataError::InvalidArgument {
                name: "max_tokens",
                reason: "must be at least 1, got 0".into(),
            });
        }
        if pairs.is_empty() {
            return Err(DataError::InvalidArgument {
                name: "pairs",
                reason: "is empty: there is nothing to batch".into(),
            });
        }
        if let Some(i) = pairs.iter().position(|(src, _)| src.is_empty()) {
            return Err(DataError::InvalidArgument {
                name: "pairs",
                reason: format!("pair {i} has an empty source (it would be all padding)"),
            });
        }
        let mut sorted: Vec<usize> = (0..pairs.len()).collect();
        sorted.sort_by_key(|&i| (cost(&pairs[i]), pairs[i].0.len(), pairs[i].1.len(), i));
        let mut batches: Vec<Vec<usize>> = Vec::new();
        let mut current: Vec<usize> = Vec::new();
        for i in sorted {
            // Sorted ascending, so pair i sets the batch's padded length.
            if !current.is_empty() && (current.len() + 1) * cost(&pairs[i]) > max_tokens {
                batches.push(std::mem::take(&mut current));
            }
            current.push(i);
        }
        batches.push(current);
        let mut batcher = Self {
            pairs,
            batches,
            max_tokens,
            seed,
            epoch: 0,
            index: 0,
            order: Vec::new(),
        };
        batcher.order = batcher.epoch_order(0);
        Ok(batcher)
    }

    /// Batch order of `epoch`: a seeded permutation, or `0..n` without a seed.
    fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.batches.len()).collect();
        if let Some(seed) = self.seed {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(epoch);
            order.shuffle(&mut rng);
        }
        order
    }

    /// Number of pairs.
    pub fn num_pairs(&self) -> usize {
        self.pairs.len()
    }

    /// Number of batches per epoch.
    pub fn num_batches(&self) -> usize {
        self.batches.len()
    }

    /// The token budget.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The next batch; after the last batch of an epoch comes the first of the next one.
    pub fn next_batch(&mut self) -> PairBatch {
        let batch = self.make_batch(self.order[self.index]);
        self.index += 1;
        if self.index == self.batches.len() {
            self.epoch += 1;
            self.index = 0;
            self.order = self.epoch_order(self.epoch);
        }
        batch
    }

    /// Where the next [`Self::next_batch`] will read: `(epoch, index within the epoch)`; the
    /// index is always below [`Self::num_batches`]. Save it with a checkpoint.
    pub fn position(&self) -> BatchPosition {
        (self.epoch, self.index)
    }

    /// Continues from a saved [`Self::position`]: the following batches are the ones that
    /// came after it in the original run (for a batcher built from the same pairs, budget
    /// and seed).
    pub fn seek(&mut self, (epoch, index): BatchPosition) -> Result<(), DataError> {
        if index >= self.batches.len() {
            return Err(DataError::InvalidArgument {
                name: "position",
                reason: format!(
                    "batch index {index} is out of range: an epoch has {} batches",
                    self.batches.len()
                ),
            });
        }
        if epoch != self.epoch {
            self.order = self.epoch_order(epoch);
        }
        self.epoch = epoch;
        self.index = index;
        Ok(())
    }

    /// The `index`-th batch of `epoch` (in that epoch's order), without moving the position.
    ///
    /// Panics if `index >= num_batches()`.
    pub fn batch(&self, epoch: u64, index: usize) -> PairBatch {
        let order = if epoch == self.epoch {
            &self.order
        } else {
            &self.epoch_order(epoch)
        };
        self.make_batch(order[index])
    }

    /// The batches of one epoch in order (epoch 0): for evaluation with [`Self::in_order`].
    pub fn batches(&self) -> impl Iterator<Item = PairBatch> + '_ {
        let order = self.epoch_order(0);
        order.into_iter().map(|b| self.make_batch(b))
    }

    /// Pads the pairs of batch `b`.
    fn make_batch(&self, b: usize) -> PairBatch {
        let ids = self.batches[b].clone();
        let rows = ids.len();
        let src_len = ids
            .iter()
            .map(|&i| self.pairs[i].0.len())
            .max()
            .unwrap_or(0);
        let tgt_len = ids
            .iter()
            .map(|&i| self.pairs[i].1.len() + 1)
            .max()
            .unwrap_or(1);
        let mut src = vec![PAD; rows * src_len];
        let mut tgt_in = vec![PAD; rows * tgt_len];
        let mut tgt_out = vec![PAD; rows * tgt_len];
        let mut n_tgt_tokens = 0;
        for (r, &i) in ids.iter().enumerate() {
            let (s, t) = &self.pairs[i];
            src[r * src_len..r * src_len + s.len()].copy_from_slice(s);
            let row_in = &mut tgt_in[r * tgt_len..(r + 1) * tgt_len];
            row_in[0] = BOS;
            row_in[1..=t.len()].copy_from_slice(t);
            let row_out = &mut tgt_out[r * tgt_len..(r + 1) * tgt_len];
            row_out[..t.len()].copy_from_slice(t);
            row_out[t.len()] = EOS;
            n_tgt_tokens += t.len() + 1;
        }
        PairBatch {
            rows,
            src_len,
            tgt_len,
            src,
            tgt_in,
            tgt_out,
            ids,
            n_tgt_tokens,
        }
    }
}

/// Training pairs after the length filter of [`drop_long_pairs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthFiltered {
    /// The kept pairs, in input order.
    pub pairs: Vec<EncodedPair>,
    /// Index in the input of each kept pair.
    pub kept: Vec<usize>,
    /// How many pairs were dropped.
    pub dropped: usize,
}

/// Drops the pairs whose source or target has more than `max_len` subwords (BOS/EOS not
/// counted), as done to the training split (`data.max_len`).
pub fn drop_long_pairs(pairs: Vec<EncodedPair>, max_len: usize) -> LengthFiltered {
    let total = pairs.len();
    let (kept, pairs): (Vec<usize>, Vec<EncodedPair>) = pairs
        .into_iter()
        .enumerate()
        .filter(|(_, (s, t))| s.len() <= max_len && t.len() <= max_len)
        .unzip();
    LengthFiltered {
        dropped: total - pairs.len(),
        pairs,
        kept,
    }
}

/// Copies of the pairs with each side cut to its first `max_len` subwords: valid/test pairs
/// for the loss (decoding and BLEU use the full source and the reference text instead).
pub fn truncate_pairs(pairs: &[EncodedPair], max_len: usize) -> Vec<EncodedPair> {
    pairs
        .iter()
        .map(|(s, t)| {
            (
                s[..s.len().min(max_len)].to_vec(),
                t[..t.len().min(max_len)].to_vec(),
            )
        })
        .collect()
}
