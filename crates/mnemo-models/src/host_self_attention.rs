//! A Transformer decoder layer's causal self-attention while decoding, on the host kernels:
//! the layer's keys and values in a causal `HostMemory` (`feedback/host_memory.rs`: the CPU
//! kernels' `[B·H, slots, Dh]` layout, one step's key and value written in place, a beam
//! search's reorders copying only the live slots) attended by `mnemo_kernels::window_attend`,
//! where the tensor path
//! ([`SelfCache::Tensors`], mnemo-core's [`KvCache`]) runs a handful of burn operations per
//! layer and step and reorders whole buffers. The same attention as
//! [`CausalSelfAttention::forward_step`] in another rounding order, for the attentions the
//! kernels cover (softmax with the layer's own position table from distance 0, no persistent
//! memory, no adaptive span) with host tensors that do not track gradients.
//!
//! Size legend: B rows, H heads, S span, Dh head size.
use burn::tensor::{Int, Tensor, TensorData};
use mnemo_backend::runs_on_host;
use mnemo_core::{CausalSelfAttention, KvCache};

use crate::feedback::host;
use crate::feedback::host_memory::HostMemory;
use crate::transformer::backward::covers;

/// A Transformer decoder layer's self-attention cache in decoding.
#[derive(Debug, Clone)]
// One per layer of a decoding state, moved only when the state is: boxing would only add an
// allocation (as `DecoderCache`).
#[allow(clippy::large_enum_variant)]
pub enum SelfCache {
    /// Keys and values as tensors (any device, any attention).
    Tensors(KvCache),
    /// Keys and values on the host for the CPU kernels; see the [module docs](self).
    Host(HostSelfCache),
}

impl SelfCache {
    /// The cache of `attn`: on the host where the kernels cover it, else tensors.
    pub fn of(attn: &CausalSelfAttention) -> Self {
        match HostSelfCache::of(attn) {
            Some(host) => SelfCache::Host(host),
            None => SelfCache::Tensors(KvCache::new(attn.span())),
        }
    }

    /// One step of `attn` over the cache (the new position's key and value written first): the
    /// attention sublayer's output.
    ///
    /// # Shapes
    /// - x: `[B, 1, D]` (normed)
    /// - output: `[B, 1, D]`
    pub fn step(&mut self, attn: &CausalSelfAttention, x: Tensor<3>) -> Tensor<3> {
        match self {
            SelfCache::Tensors(cache) => attn.forward_step(x, cache),
            SelfCache::Host(cache) => cache.step(attn, x),
        }
    }

    /// Keep the rows `rows`, in that order (`index`: the same rows as a tensor).
    ///
    /// # Shapes
    /// - rows, index: `[B']`, indices into `0..B`
    pub(crate) fn select(&mut self, rows: &[usize], index: &Tensor<1, Int>) {
        match self {
            SelfCache::Tensors(cache) => cache.select(index),
            SelfCache::Host(cache) => cache.select(rows),
        }
    }
}

/// The host form of [`SelfCache`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct HostSelfCache {
    /// The keys and values (None before the first step, when the rows are not known yet).
    memory: Option<HostMemory>,
    /// The position vectors of a full window, oldest slot first (slot j at distance
    /// S − 1 − j), `[S, Dh]`.
    positions: Vec<f32>,
    heads: usize,
}

impl HostSelfCache {
    /// The cache of `attn` if the kernels cover it (see the [module docs](self)).
    fn of(attn: &CausalSelfAttention) -> Option<Self> {
        let table = attn.positions.as_ref()?;
        let weights = table.table.val();
        let covered = covers(attn) && !weights.is_autodiff() && runs_on_host(&weights.device());
        covered.then(|| Self {
            memory: None,
            positions: host(table.window(table.span())),
            heads: attn.n_heads,
        })
    }

    /// See [`SelfCache::step`].
    fn step(&mut self, attn: &CausalSelfAttention, x: Tensor<3>) -> Tensor<3> {
        let [b, _, _] = x.dims();
        let q = attn.query.forward(x.clone()); // [B,1,H·Dh]
        let (k, v) = (attn.key.forward(x.clone()), attn.value.forward(x));
        let (dims, device) = (q.dims(), q.device());
        let dh = dims[2] / self.heads;
        let (rows, span) = (b * self.heads, self.positions.len() / dh);
        let memory = (self.memory).get_or_insert_with(|| HostMemory::causal(rows, span, dh));
        memory.push(&[(host(k), host(v))]);
        let out = memory.attend(0, &self.positions, &host(q));
        let out = Tensor::from_data(TensorData::new(out, dims), &device);
        attn.dropout.forward(attn.output.forward(out))
    }

    /// Keep the rows `rows`, in that order.
    fn select(&mut self, rows: &[usize]) {
        if let Some(memory) = &mut self.memory {
            memory.select(rows, self.heads);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use mnemo_core::CausalSelfAttentionConfig;
    use mnemo_core::host::{max_abs_diff, to_vec};

    /// Steps over the host cache equal those over the tensor cache: through its growth
    /// (span 40: 32 → 64 → 80 slots) and moves to the front (span 5, and 40 past step 80), with
    /// the rows reordered, duplicated and dropped between steps as a beam search does, and a
    /// head size other than D/H.
    #[test]
    fn host_steps_equal_tensor_steps() {
        let device = mnemo_backend::device("flex").unwrap();
        for (span, steps) in [(5, 23), (40, 90)] {
            let attn = CausalSelfAttentionConfig {
                d_head: 6,
                ..CausalSelfAttentionConfig::new(8, 2, span)
            }
            .init(&device);
            let mut host = SelfCache::of(&attn);
            assert!(
                matches!(host, SelfCache::Host(_)),
                "a flex device's cache is on the host"
            );
            let mut tensors = SelfCache::Tensors(KvCache::new(attn.span()));
            let mut rows = 3;
            for t in 0..steps {
                let x = Tensor::<3>::random([rows, 1, 8], Distribution::Normal(0.0, 1.0), &device);
                let (got, want) = (host.step(&attn, x.clone()), tensors.step(&attn, x));
                let diff = max_abs_diff(&to_vec(got), &to_vec(want));
                assert!(
                    diff < 1e-5,
                    "span {span}, step {t}: the caches differ by {diff}"
                );
                let keep: Vec<usize> = match t % 4 {
                    1 => vec![rows - 1, 0, 0],
                    2 => (0..rows).rev().collect(),
                    3 if rows > 2 => vec![1, 0],
                    _ => (0..rows).collect(),
                };
                let index = Tensor::<1, Int>::from_data(
                    TensorData::new(keep.iter().map(|&r| r as i64).collect(), [keep.len()]),
                    &device,
                );
                host.select(&keep, &index);
                tensors.select(&keep, &index);
                rows = keep.len();
            }
        }
        let autodiff = mnemo_backend::autodiff_device("flex").unwrap();
        let tracked = CausalSelfAttentionConfig::new(8, 2, 5).init(&autodiff);
        assert!(matches!(SelfCache::of(&tracked), SelfCache::Tensors(_)));
    }
}
