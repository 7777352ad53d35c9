//! Incremental decoding state of a [`Seq2Seq`](crate::Seq2Seq): the cross-attention keys/values
//! of the encoder (computed once per sentence) and the decoder's self-attention cache
//! (Transformer: per-layer keys/values; Feedback: the keys/values of the decoded steps' memories,
//! [`crate::feedback::FeedbackMemory`], zero memories folded), each a preallocated buffer written in place.
//!
//! Rows can be reordered or duplicated with [`DecodeState::select`] (beam search keeps B·K
//! rows in one state and reorders them after every step).
use burn::tensor::{Bool, Int, Tensor};

use crate::feedback::FeedbackMemory;
use crate::seq2seq_decoder::CrossMemory;

/// Decoding state of a batch of rows; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct DecodeState {
    /// Per decoder layer, the encoder keys/values. Shape `[B, H, S_src, Dh]` each.
    pub(crate) cross: Vec<CrossMemory>,
    /// True where the source is padding. Shape `[B, 1, 1, S_src]`.
    pub(crate) key_mask: Tensor<4, Bool>,
    /// The decoder's self-attention cache.
    pub(crate) cache: DecoderCache,
    /// Number of tokens fed so far.
    pub(crate) steps: usize,
}

/// The decoder-specific part of a [`DecodeState`].
#[derive(Debug, Clone)]
pub(crate) enum DecoderCache {
    /// One self-attention cache per Transformer decoder layer.
    Transformer(Vec<SelfAttentionCache>),
    /// The Feedback decoder's memories of the decoded steps (zero memories folded).
    Feedback(FeedbackMemory),
}

impl DecodeState {
    pub(crate) fn new(cross: Vec<CrossMemory>, key_mask: Tensor<4, Bool>, cache: DecoderCache) -> Self {
        Self { cross, key_mask, cache, steps: 0 }
    }

    /// Number of rows B.
    pub fn rows(&self) -> usize {
        self.key_mask.dims()[0]
    }

    /// Number of tokens fed so far (the same for every row).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Keep the rows `rows`, in that order; a row may repeat (beam search duplicates a
    /// hypothesis that spawns several continuations) or be dropped (finished sentences).
    ///
    /// # Shapes
    /// - rows: `[B']`, indices into the current `0..B`
    pub fn select(&mut self, rows: Tensor<1, Int>) {
        let sel4 = |x: &Tensor<4>| x.clone().select(0, rows.clone());
        self.cross = self.cross.iter().map(|(k, v)| (sel4(k), sel4(v))).collect();
        self.key_mask = self.key_mask.clone().select(0, rows.clone());
        match &mut self.cache {
            DecoderCache::Transformer(caches) => caches.iter_mut().for_each(|c| c.select(&rows)),
            DecoderCache::Feedback(cache) => cache.select(&rows),
        }
    }
}

/// Keys and values of one causal self-attention layer for step-by-step decoding, in a
/// preallocated buffer written in place.
///
/// A step attends to itself and the `span - 1` positions before it (as the parallel pass). The
/// buffer grows by doubling up to `2·span` slots; once full, the newest `span - 1` slots are moved
/// to the front (one copy every `span + 1` steps), so the live keys are always one contiguous view.
#[derive(Debug, Clone)]
pub struct SelfAttentionCache {
    /// Keys `[B, H, capacity, Dh]` (None before the first step).
    keys: Option<Tensor<4>>,
    /// Values `[B, H, capacity, Dh]`.
    values: Option<Tensor<4>>,
    /// Slots in use, `0..len`.
    len: usize,
    /// Attention span S.
    span: usize,
}

/// Initial number of slots of a [`SelfAttentionCache`] (capped at `2·span`).
const INITIAL_SLOTS: usize = 32;

impl SelfAttentionCache {
    /// An empty cache for span `span` (≥ 1).
    pub fn new(span: usize) -> Self {
        assert!(span >= 1, "span must be at least 1");
        Self { keys: None, values: None, len: 0, span }
    }

    /// Number of slots in use (at most `2·span`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Write one position's key and value; return views of the keys and values it attends to,
    /// oldest first: the last `min(steps, span)` positions, itself included. Drop the views
    /// before the next push, or that write copies the buffer.
    ///
    /// # Shapes
    /// - k, v: `[B, H, 1, Dh]`
    /// - output: `[B, H, n, Dh]` each
    pub fn push(&mut self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [b, h, _, dh] = k.dims();
        let max_slots = 2 * self.span;
        let capacity = self.keys.as_ref().map_or(0, |x| x.dims()[2]);
        if self.len == capacity {
            if capacity < max_slots {
                // Grow (first step or doubling): one allocation, the old slots copied once.
                let new_cap = (2 * capacity).clamp(INITIAL_SLOTS.min(max_slots), max_slots);
                let device = k.device();
                let grow = |old: Option<Tensor<4>>| {
                    let pad = Tensor::<4>::zeros([b, h, new_cap - capacity, dh], &device);
                    match old {
                        Some(old) => Tensor::cat(vec![old, pad], 2),
                        None => pad,
                    }
                };
                self.keys = Some(grow(self.keys.take()));
                self.values = Some(grow(self.values.take()));
            } else {
                // Full: keep the newest span - 1 slots at the front.
                let keep = self.span - 1;
                let front = |x: &mut Option<Tensor<4>>| {
                    let buf = x.take().expect("allocated");
                    let live = buf.clone().slice_dim(2, capacity - keep..capacity);
                    *x = Some(buf.slice_assign([0..b, 0..h, 0..keep, 0..dh], live));
                };
                front(&mut self.keys);
                front(&mut self.values);
                self.len = keep;
            }
        }
        let slot = self.len;
        let ranges = [0..b, 0..h, slot..slot + 1, 0..dh];
        let keys = self.keys.as_mut().expect("allocated");
        keys.inplace(|buf| buf.slice_assign(ranges.clone(), k));
        let values = self.values.as_mut().expect("allocated");
        values.inplace(|buf| buf.slice_assign(ranges, v));
        self.len += 1;
        let n = self.len.min(self.span);
        let live = self.len - n..self.len;
        (keys.clone().slice_dim(2, live.clone()), values.clone().slice_dim(2, live))
    }

    /// Keep the rows `rows` (see [`DecodeState::select`]).
    pub(crate) fn select(&mut self, rows: &Tensor<1, Int>) {
        self.keys = self.keys.take().map(|x| x.select(0, rows.clone()));
        self.values = self.values.take().map(|x| x.select(0, rows.clone()));
    }
}
