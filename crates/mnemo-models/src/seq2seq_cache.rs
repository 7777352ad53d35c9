//! Incremental decoding state of a [`Seq2Seq`](crate::Seq2Seq): the cross-attention keys/values
//! of the encoder (computed once per sentence; for CAN the source part of each layer's one
//! attention) and the decoder's self-attention cache (Transformer: per-layer keys/values, a
//! [`SelfCache`] each, on the host kernels on CPU backends; CAN: a [`KvCache`] each; Feedback: the keys/values of the decoded steps' memories,
//! [`crate::feedback::FeedbackMemory`], zero memories folded), each a preallocated buffer
//! written in place.
//!
//! Rows can be reordered or duplicated with [`DecodeState::select`] (beam search keeps B·K
//! rows in one state and reorders them after every step; the cross-attention memory, which
//! depends on a row's source sentence only, is reordered only when that changes).
use burn::tensor::{Device, Int, Tensor, TensorData};
use mnemo_core::KvCache;

use crate::feedback::FeedbackMemory;
use crate::host_cross::HostCross;
use crate::host_self_attention::SelfCache;
use crate::seq2seq_decoder::CrossMemory;
use crate::tied_head::PackedHead;

/// Decoding state of a batch of rows; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct DecodeState {
    /// Per decoder layer, the encoder keys/values and the source padding. Shape
    /// `[B, H, S_src, Dh]` each (CAN values: `[B, H, S_src, F/H]`).
    pub(crate) cross: Vec<CrossMemory>,
    /// Number of rows B.
    pub(crate) rows: usize,
    /// Per row, the source sentence (the encoder row) its cross-attention memory holds.
    sources: Vec<usize>,
    /// The decoder's self-attention cache.
    pub(crate) cache: DecoderCache,
    /// Where the state's tensors live.
    device: Device,
    /// Number of tokens fed so far.
    pub(crate) steps: usize,
    /// The tied output head packed for the host kernels (set by
    /// [`Seq2Seq::start`](crate::Seq2Seq::start) on a host device; None: burn's product).
    pub(crate) head: Option<PackedHead>,
    /// Per decoder layer, a host copy of [`cross`](Self::cross) that the step attends with the
    /// CPU kernels (set with the packed head, for the Transformer and Feedback decoders and
    /// sources padded at the end; None: burn's products).
    pub(crate) host_cross: Option<Vec<HostCross>>,
}

/// The decoder-specific part of a [`DecodeState`].
#[derive(Debug, Clone)]
// One per decoding state, moved only when the state is: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum DecoderCache {
    /// One self-attention cache per Transformer decoder layer (on the host kernels where
    /// they cover it).
    Transformer(Vec<SelfCache>),
    /// The Feedback decoder's memories of the decoded steps (zero memories folded).
    Feedback(FeedbackMemory),
    /// One target key/value cache per CAN decoder layer (values F/H wide per head).
    Can(Vec<KvCache>),
}

impl DecodeState {
    pub(crate) fn new(
        cross: Vec<CrossMemory>,
        rows: usize,
        cache: DecoderCache,
        device: Device,
    ) -> Self {
        Self {
            cross,
            rows,
            sources: (0..rows).collect(),
            cache,
            device,
            steps: 0,
            head: None,
            host_cross: None,
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
    /// hypothesis that spawns several continuations) or be dropped (finished sentences). The
    /// cross-attention memory is left as it is when every new row continues the source
    /// sentence the old row at its place had (beam search reordering a sentence's beams).
    ///
    /// # Shapes
    /// - rows: `[B']`, indices into the current `0..B`
    ///
    /// # Panics
    /// If an index is not below B.
    pub fn select(&mut self, rows: &[usize]) {
        if let Some(&r) = rows.iter().find(|&&r| r >= self.rows) {
            panic!("row {r} of a decoding state of {} rows", self.rows);
        }
        let ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(ids, [rows.len()]), &self.device);
        let sources: Vec<usize> = rows.iter().map(|&r| self.sources[r]).collect();
        if sources != self.sources {
            self.cross = self.cross.iter().map(|c| c.select(index.clone())).collect();
            if let Some(host) = &mut self.host_cross {
                *host = host.iter().map(|h| h.select(rows)).collect();
            }
            self.sources = sources;
        }
        self.rows = rows.len();
        match &mut self.cache {
            DecoderCache::Transformer(caches) => {
                caches.iter_mut().for_each(|c| c.select(rows, &index))
            }
            DecoderCache::Can(caches) => caches.iter_mut().for_each(|c| c.select(&index)),
            DecoderCache::Feedback(cache) => cache.select_rows_for_search(rows, &index),
        }
    }
}
