//! Incremental decoding state of a [`Seq2Seq`](crate::Seq2Seq): the cross-attention keys/values
//! of the encoder (computed once per sentence; for CAN the source part of each layer's one
//! attention) and the decoder's self-attention cache (Transformer and CAN: per-layer
//! keys/values, a [`KvCache`] each; Feedback: the keys/values of the decoded steps' memories,
//! [`crate::feedback::FeedbackMemory`], zero memories folded), each a preallocated buffer
//! written in place.
//!
//! Rows can be reordered or duplicated with [`DecodeState::select`] (beam search keeps B·K
//! rows in one state and reorders them after every step).
use burn::tensor::{Int, Tensor};
use mnemo_core::KvCache;

use crate::feedback::FeedbackMemory;
use crate::seq2seq_decoder::CrossMemory;

/// Decoding state of a batch of rows; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct DecodeState {
    /// Per decoder layer, the encoder keys/values and the source padding. Shape
    /// `[B, H, S_src, Dh]` each (CAN values: `[B, H, S_src, F/H]`).
    pub(crate) cross: Vec<CrossMemory>,
    /// Number of rows B.
    pub(crate) rows: usize,
    /// The decoder's self-attention cache.
    pub(crate) cache: DecoderCache,
    /// Number of tokens fed so far.
    pub(crate) steps: usize,
}

/// The decoder-specific part of a [`DecodeState`].
#[derive(Debug, Clone)]
// One per decoding state, moved only when the state is: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum DecoderCache {
    /// One self-attention cache per Transformer decoder layer.
    Transformer(Vec<KvCache>),
    /// The Feedback decoder's memories of the decoded steps (zero memories folded).
    Feedback(FeedbackMemory),
    /// One target key/value cache per CAN decoder layer (values F/H wide per head).
    Can(Vec<KvCache>),
}

impl DecodeState {
    pub(crate) fn new(cross: Vec<CrossMemory>, rows: usize, cache: DecoderCache) -> Self {
        Self {
            cross,
            rows,
            cache,
            steps: 0,
        }
    }

    /// Number of rows B.
    pub fn rows(&self) -> usize {
        self.rows
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
        self.cross = self.cross.iter().map(|c| c.select(rows.clone())).collect();
        self.rows = rows.dims()[0];
        match &mut self.cache {
            DecoderCache::Transformer(caches) | DecoderCache::Can(caches) => {
                caches.iter_mut().for_each(|c| c.select(&rows))
            }
            DecoderCache::Feedback(cache) => cache.select(&rows),
        }
    }
}
