//! The Feedback Transformer's decoding cache: preallocated key/value and memory buffers that
//! step-by-step generation writes in place.
//!
//! Layout: each buffer has `S + C` slots (C = S). The live window is slots
//! `start .. start + S`, oldest first; a step writes its memory (and its keys/values, per
//! projection) at slot `start + S` and advances `start`. When `start` reaches C, the last S
//! slots are moved to the front once (one copy every C steps instead of a concatenation of
//! the whole window at every step). Windows handed to the layers are views, so the relative
//! positions of a window are always the same (slot `j` at distance `S - j`) and are computed
//! once, with the cache.
use burn::tensor::Tensor;

/// Decoding buffers of a [`FeedbackLm`](crate::FeedbackLm) stream; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct FeedbackCache {
    /// Keys per projection. Shape `[B, H, S + C, Dh]`.
    pub(crate) keys: Vec<Tensor<4>>,
    /// Values per projection. Shape `[B, H, S + C, Dh]`.
    pub(crate) values: Vec<Tensor<4>>,
    /// Memory vectors. Shape `[B, S + C, D]`.
    pub(crate) memories: Tensor<3>,
    /// First slot of the live window.
    pub(crate) start: usize,
    /// Span S.
    pub(crate) span: usize,
    /// Per layer, the window's position vectors ready for `q · Pᵀ`. Shape `[1, 1, Dh, S]`.
    pub(crate) positions: Vec<Tensor<4>>,
}

impl FeedbackCache {
    /// A cache whose window holds `memories` and their keys/values.
    ///
    /// # Shapes
    /// - memories: `[B, S, D]`
    /// - projected: per projection, keys and values `[B, H, S, Dh]`
    /// - positions: per layer `[1, 1, Dh, S]`
    pub(crate) fn new(memories: Tensor<3>, projected: Vec<(Tensor<4>, Tensor<4>)>, positions: Vec<Tensor<4>>) -> Self {
        let [_, span, _] = memories.dims();
        let grow4 = |x: Tensor<4>| Tensor::cat(vec![x.clone(), x.zeros_like()], 2);
        let (keys, values) = projected.into_iter().map(|(k, v)| (grow4(k), grow4(v))).unzip();
        let memories = Tensor::cat(vec![memories.clone(), memories.zeros_like()], 1);
        Self { keys, values, memories, start: 0, span, positions }
    }

    /// The live keys and values of every projection (views into the buffers).
    ///
    /// # Shapes
    /// - output: per projection `[B, H, S, Dh]` each
    pub(crate) fn windows(&self) -> Vec<(Tensor<4>, Tensor<4>)> {
        let range = self.start..self.start + self.span;
        self.keys
            .iter()
            .zip(&self.values)
            .map(|(k, v)| (k.clone().slice_dim(2, range.clone()), v.clone().slice_dim(2, range.clone())))
            .collect()
    }

    /// The live memories, oldest first (a view into the buffer).
    ///
    /// # Shapes
    /// - output: `[B, S, D]`
    pub(crate) fn live_memories(&self) -> Tensor<3> {
        self.memories.clone().slice_dim(1, self.start..self.start + self.span)
    }

    /// Append one step: its memory and, per projection, its key and value. Drop every view of
    /// the buffers first, or the write copies them.
    ///
    /// # Shapes
    /// - memory: `[B, 1, D]`
    /// - projected: per projection `[B, H, 1, Dh]` each
    pub(crate) fn push(&mut self, memory: Tensor<3>, projected: Vec<(Tensor<4>, Tensor<4>)>) {
        let slot = self.start + self.span;
        for ((kb, vb), (k, v)) in self.keys.iter_mut().zip(self.values.iter_mut()).zip(projected) {
            kb.inplace(|buf| buf.slice_dim_assign(2, slot, k));
            vb.inplace(|buf| buf.slice_dim_assign(2, slot, v));
        }
        self.memories.inplace(|buf| buf.slice_dim_assign(1, slot, memory));
        self.start += 1;
        if self.start == self.span {
            // Buffer full: move the live window to the front.
            let s = self.span;
            let front4 = |x: Tensor<4>| {
                let live = x.clone().slice_dim(2, s..2 * s);
                x.slice_dim_assign_range(2, 0..s, live)
            };
            self.keys = std::mem::take(&mut self.keys).into_iter().map(front4).collect();
            self.values = std::mem::take(&mut self.values).into_iter().map(front4).collect();
            let live = self.memories.clone().slice_dim(1, s..2 * s);
            let buf = self.memories.clone();
            self.memories = buf.slice_dim_assign_range(1, 0..s, live);
            self.start = 0;
        }
    }
}

/// `slice_assign` along one dimension.
trait SliceDimAssign: Sized {
    fn slice_dim_assign(self, dim: usize, index: usize, value: Self) -> Self {
        self.slice_dim_assign_range(dim, index..index + 1, value)
    }
    fn slice_dim_assign_range(self, dim: usize, range: std::ops::Range<usize>, value: Self) -> Self;
}

impl<const D: usize> SliceDimAssign for Tensor<D> {
    fn slice_dim_assign_range(self, dim: usize, range: std::ops::Range<usize>, value: Self) -> Self {
        let dims = self.dims();
        let ranges: [std::ops::Range<usize>; D] =
            std::array::from_fn(|i| if i == dim { range.clone() } else { 0..dims[i] });
        self.slice_assign(ranges, value)
    }
}
