//! A decoder layer's attention over its source held in host memory: each step's one query per
//! head attends every sentence's unpadded source positions with `mnemo_kernels::window` (no
//! position term), the sentences split over both cores. The Feedback decoder's manual backward
//! with host products ([`StepProducts::Host`](crate::StepProducts::Host)) keeps each step's
//! queries and probabilities and adds the source keys' and values' gradients once at the end,
//! one pass per sentence over all steps' terms; decoding on a host device reads it for every
//! decoder layer's step ([`crate::seq2seq_cache::DecodeState`]). The tensor path it replaces
//! ran burn's batched product of `[1, Dh]` queries per step, forward and backward, and added a
//! `[B, H, S_src, Dh]` product into the key and value gradients at every step: about a quarter
//! of a translation training step (docs/performance.md).
//!
//! A sentence's source padding must come after its tokens (as the batcher pads); a mask of
//! another form keeps the tensor path ([`HostCross::of`] returns None).
//!
//! Size legend: B rows (sentences), H heads, Dh head size, D = H·Dh, S_src source length,
//! T steps; buffers are `[B·H, S_src, Dh]`.
use burn::tensor::{Bool, Device, Tensor, TensorData};
use mnemo_kernels::{
    Isa, Window, WindowGrads, WindowShape, WindowTerm, on_both_cores, window_accumulate,
    window_attend, window_attend_backward,
};

use crate::feedback::host;
use mnemo_backend::with_slice;

/// The source keys and values of one cross-attention sublayer on the host, and what its steps
/// kept for the backward.
#[derive(Clone)]
pub struct HostCross {
    isa: Isa,
    heads: usize,
    dh: usize,
    /// Source positions per sentence (padded to S_src in the buffers).
    slots: usize,
    /// Unpadded source length per sentence.
    lens: Vec<usize>,
    /// Where sentence `b`'s probabilities `[H, len_b]` begin in a step's probabilities.
    offsets: Vec<usize>,
    scale: f32,
    keys: Vec<f32>,
    values: Vec<f32>,
    /// Per step (time order): the queries `[B·H, Dh]` and the probabilities (every sentence's
    /// `[H, len_b]`, one after another).
    q: Vec<Vec<f32>>,
    probs: Vec<Vec<f32>>,
    /// Per step (time order, filled by the backward): the score gradients (laid out as the
    /// probabilities) and the attention output's gradient `[B·H, Dh]`.
    dscores: Vec<Vec<f32>>,
    d_out: Vec<Vec<f32>>,
}

impl std::fmt::Debug for HostCross {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCross")
            .field("heads", &self.heads)
            .field("dh", &self.dh)
            .field("slots", &self.slots)
            .field("lens", &self.lens)
            .field("steps", &self.q.len())
            .finish_non_exhaustive()
    }
}

/// One sentence's part of a step: its queries or output rows `[H, Dh]` and its probabilities
/// or score gradients `[H, len_b]`.
type SentencePart<'a> = (&'a mut [f32], &'a mut [f32]);

impl HostCross {
    /// The host copy of the source keys and values, or None when a sentence's padding does
    /// not come after all its tokens or a sentence has no token.
    ///
    /// # Shapes
    /// - keys, values: `[B, H, S_src, Dh]`; key_mask: `[B, 1, 1, S_src]` (true at padding)
    pub(crate) fn of(
        keys: &Tensor<4>,
        values: &Tensor<4>,
        key_mask: &Tensor<4, Bool>,
    ) -> Option<Self> {
        let [b, heads, slots, dh] = keys.dims();
        let mask: Vec<bool> = key_mask.clone().into_data().try_to_vec::<bool>().ok()?;
        let lens = mask
            .chunks_exact(slots)
            .map(|row| {
                let len = row.iter().take_while(|&&pad| !pad).count();
                (len > 0 && row[len..].iter().all(|&pad| pad)).then_some(len)
            })
            .collect::<Option<Vec<usize>>>()?;
        debug_assert_eq!(lens.len(), b);
        let offsets = offsets(&lens, heads);
        Some(Self {
            isa: Isa::detect(),
            heads,
            dh,
            slots,
            lens,
            offsets,
            scale: 1.0 / (dh as f32).sqrt(),
            keys: host(keys.clone()),
            values: host(values.clone()),
            q: Vec::new(),
            probs: Vec::new(),
            dscores: Vec::new(),
            d_out: Vec::new(),
        })
    }

    /// Values per step of every sentence's probabilities.
    fn probs_len(&self) -> usize {
        self.heads * self.lens.iter().sum::<usize>()
    }

    /// Sentence `b`'s window: its H rows over its unpadded source positions.
    fn window(&self, b: usize) -> Window<'_> {
        let rows = self.heads * self.slots * self.dh;
        let at = b * rows..(b + 1) * rows;
        Window {
            isa: self.isa,
            shape: WindowShape {
                rows: self.heads,
                slots: self.slots,
                span: self.lens[b],
                dh: self.dh,
            },
            start: 0,
            scale: self.scale,
            keys: &self.keys[at.clone()],
            values: &self.values[at],
            pos: None,
            zeros: None,
        }
    }

    /// Split a step's `[B·H, Dh]` rows and its per-sentence probabilities into the sentences'
    /// parts, and run `f(b, part)` for the first half of the sentences here and the second on
    /// the helper thread.
    fn per_sentence(
        &self,
        rows: &mut [f32],
        probs: &mut [f32],
        f: impl Fn(usize, SentencePart<'_>) + Sync,
    ) {
        let per_row = self.heads * self.dh;
        let mut parts: Vec<(usize, SentencePart<'_>)> = Vec::with_capacity(self.lens.len());
        let (mut rows, mut probs) = (rows, probs);
        for (b, &len) in self.lens.iter().enumerate() {
            let (r, rest) = rows.split_at_mut(per_row);
            let (p, rest_p) = probs.split_at_mut(self.heads * len);
            parts.push((b, (r, p)));
            (rows, probs) = (rest, rest_p);
        }
        let second = parts.split_off(parts.len() / 2);
        let run = |parts: Vec<(usize, SentencePart<'_>)>| {
            for (b, part) in parts {
                f(b, part);
            }
        };
        on_both_cores(|| run(parts), || run(second));
    }

    /// One step's attention: the output rows of the queries, kept for the backward.
    ///
    /// # Shapes
    /// - q, output: `[B, D]` (row-major, heads in order)
    pub(crate) fn attend(&mut self, q: &[f32]) -> Vec<f32> {
        let (out, probs) = self.attend_rows(q);
        self.q.push(q.to_vec());
        self.probs.push(probs);
        out
    }

    /// The output rows and the probabilities of one step's queries (nothing kept).
    ///
    /// # Shapes
    /// - q, output rows: `[B, D]`
    fn attend_rows(&self, q: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let per_row = self.heads * self.dh;
        let mut out = vec![0.0f32; q.len()];
        let mut probs = vec![0.0f32; self.probs_len()];
        self.per_sentence(&mut out, &mut probs, |b, (out, probs)| {
            let q = &q[b * per_row..(b + 1) * per_row];
            window_attend(&self.window(b), q, probs, out);
        });
        (out, probs)
    }

    /// A decoding step's attention (no backward follows).
    ///
    /// # Shapes
    /// - q, output: `[B, H, 1, Dh]`
    pub(crate) fn attend_step(&self, q: Tensor<4>) -> Tensor<4> {
        let (dims, device) = (q.dims(), q.device());
        assert_eq!(dims[2], 1, "one query per row and head");
        let (out, _) = with_slice(q, |q| self.attend_rows(q));
        Tensor::from_data(TensorData::new(out, dims), &device)
    }

    /// Rows `rows` of the batch, in that order (a row may repeat or be dropped), with no
    /// step kept: a decoding state's reorder.
    pub(crate) fn select(&self, rows: &[usize]) -> Self {
        let per_sentence = self.heads * self.slots * self.dh;
        let gather = |buf: &[f32]| -> Vec<f32> {
            let mut out = Vec::with_capacity(rows.len() * per_sentence);
            for &r in rows {
                out.extend_from_slice(&buf[r * per_sentence..(r + 1) * per_sentence]);
            }
            out
        };
        let lens: Vec<usize> = rows.iter().map(|&r| self.lens[r]).collect();
        Self {
            offsets: offsets(&lens, self.heads),
            keys: gather(&self.keys),
            values: gather(&self.values),
            lens,
            q: Vec::new(),
            probs: Vec::new(),
            dscores: Vec::new(),
            d_out: Vec::new(),
            ..*self
        }
    }

    /// The backward of step `t` given the attention output's gradient: the queries' gradient.
    /// Steps are taken in reverse, each once.
    ///
    /// # Shapes
    /// - d_out, output: `[B, D]`
    pub(crate) fn backward(&mut self, t: usize, d_out: &[f32]) -> Vec<f32> {
        if self.dscores.is_empty() {
            self.dscores = vec![Vec::new(); self.q.len()];
            self.d_out = vec![Vec::new(); self.q.len()];
        }
        let per_row = self.heads * self.dh;
        let mut dq = vec![0.0f32; d_out.len()];
        let mut dscores = vec![0.0f32; self.probs_len()];
        let probs = &self.probs[t];
        self.per_sentence(&mut dq, &mut dscores, |b, (dq, dscores)| {
            let at = self.offsets[b]..self.offsets[b] + dscores.len();
            let d_out = &d_out[b * per_row..(b + 1) * per_row];
            let g = WindowGrads { dq, dscores };
            window_attend_backward(&self.window(b), &probs[at], d_out, g);
        });
        self.dscores[t] = dscores;
        self.d_out[t] = d_out.to_vec();
        dq
    }

    /// The source keys' and values' gradients over all steps, `[B, H, S_src, Dh]` each:
    /// `dK_j = Σ_t dscores_tj · q_t`, `dV_j = Σ_t probs_tj · d_out_t`, one pass per sentence.
    pub(crate) fn grads(self, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let (heads, slots, dh) = (self.heads, self.slots, self.dh);
        let per_sentence = heads * slots * dh;
        let b_len = self.lens.len();
        let mut dkeys = vec![0.0f32; b_len * per_sentence];
        let mut dvalues = vec![0.0f32; b_len * per_sentence];
        let accumulate = |b: usize, coeffs: &[Vec<f32>], vecs: &[Vec<f32>], buf: &mut [f32]| {
            let len = self.lens[b];
            let at = self.offsets[b]..self.offsets[b] + heads * len;
            let rows = b * heads * dh..(b + 1) * heads * dh;
            let terms: Vec<WindowTerm> = coeffs
                .iter()
                .zip(vecs)
                .map(|(c, v)| WindowTerm {
                    start: 0,
                    folded: 0,
                    coeff: &c[at.clone()],
                    vec: &v[rows.clone()],
                })
                .collect();
            let shape = WindowShape {
                rows: heads,
                slots,
                span: len,
                dh,
            };
            window_accumulate(self.isa, shape, &terms, buf);
        };
        on_both_cores(
            || {
                for (b, buf) in dkeys.chunks_exact_mut(per_sentence).enumerate() {
                    accumulate(b, &self.dscores, &self.q, buf);
                }
            },
            || {
                for (b, buf) in dvalues.chunks_exact_mut(per_sentence).enumerate() {
                    accumulate(b, &self.probs, &self.d_out, buf);
                }
            },
        );
        let tensor = |v: Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(v, [b_len, heads, slots, dh]), device)
        };
        (tensor(dkeys), tensor(dvalues))
    }
}

/// Where each sentence's probabilities `[H, len_b]` begin in a step's probabilities.
fn offsets(lens: &[usize], heads: usize) -> Vec<usize> {
    lens.iter()
        .scan(0, |at, &len| {
            let start = *at;
            *at += heads * len;
            Some(start)
        })
        .collect()
}
