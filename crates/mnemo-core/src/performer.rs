//! Performer attention: FAVOR+ positive orthogonal random features (Choromanski et al. 2021,
//! "Rethinking Attention with Performers"), causal, through the prefix sums of
//! [`fast_weights`](crate::fast_weights).
//!
//! The softmax kernel is estimated without bias by positive random features:
//!
//! ```text
//! exp(q·k / √Dh) = E_w[φ(q)·φ(k)],   x' = x / Dh^{1/4}
//! φ(x) = exp(W x' − |x'|²/2) / √m,   W ∈ R^{m×Dh}
//! y_t = φ(q_t)ᵀ Σ_{i≤t} φ(k_i) v_iᵀ / (φ(q_t)ᵀ Σ_{i≤t} φ(k_i) + ε)
//! ```
//!
//! The rows of W come in blocks of Dh orthonormal rows (Gram-Schmidt of a Gaussian Dh×Dh
//! block, in f64 on the host; the last block truncated to m), each row then scaled by the norm
//! of an independent Gaussian Dh-vector, so that every row is marginally `N(0, I)` while rows of
//! a block stay orthogonal (lower variance than i.i.d. rows). W is drawn from the ChaCha8 stream
//! `draw` of `seed` ([`orthogonal_random_features`]).
//!
//! W is stored as a parameter that does not require gradients (`Param::set_require_grad(false)`,
//! burn's way to keep a tensor in a module's record without training it): it is saved and
//! loaded with the model, the optimizer never sees a gradient for it. [`PerformerAttention::redraw`]
//! replaces it with another draw (the paper's feature redrawing); with `redraw_every = N` the
//! trainer does it every N steps through [`PerformerAttention::after_update`]. Note that `seeded::reinit` redraws every float parameter, W included:
//! call `redraw` after it.
//!
//! Stabiliser: the query features are computed as `exp(W q' − max_j (W q')_j) / √m`: a
//! per-query-row factor, which cancels between numerator and denominator (up to ε), and depends
//! on `q_t` alone, so step-by-step decoding equals the parallel pass. Key features are not
//! stabilised (a max over the sequence's keys would leak future positions); their exponent is at
//! most `|w_j|²/2` (≈ Dh/2), finite in f32 for head widths up to ~128.
//!
//! No position terms, as in [`linear_attention`](crate::linear_attention).
use burn::module::{Module, Param};
use burn::nn::{Dropout, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::carried_state::CarriedState;
use crate::fast_weights::{DEFAULT_EPS, FastWeightState, causal_linear_attend};
use crate::heads::{merge_heads, split_heads};
use crate::projections::{at_least_one, check_shared, checked_projections};

/// Configuration of a [`PerformerAttention`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerformerAttentionConfig {
    /// Model width D.
    pub d_model: usize,
    /// Number of heads H (D must be divisible by H).
    pub n_heads: usize,
    /// Dropout on the attention output.
    pub dropout: f64,
    /// Multiplier on the output projection's initial weights (1/sqrt(2L) for pre-norm stacks).
    pub out_init_scale: f64,
    /// Number of random features m (shared by all heads).
    pub features: usize,
    /// Chunk length C of the causal prefix sums (cost O(T·C)).
    pub chunk: usize,
    /// Seed of the random features (draw 0 at init).
    pub seed: u64,
    /// Redraw the features every this many training steps (0 = never; see
    /// [`PerformerAttention::after_update`]).
    pub redraw_every: u64,
}

impl PerformerAttentionConfig {
    /// Width D, H heads, m features and the feature seed, without dropout, default output
    /// init, chunks of 64.
    pub fn new(d_model: usize, n_heads: usize, features: usize, seed: u64) -> Self {
        Self {
            d_model,
            n_heads,
            dropout: 0.0,
            out_init_scale: 1.0,
            features,
            chunk: 64,
            seed,
            redraw_every: 0,
        }
    }

    /// Whether the config can be built; the message starts with the offending field.
    pub fn validate(&self) -> Result<(), String> {
        check_shared(self.shared())?;
        at_least_one("features", self.features)?;
        at_least_one("chunk", self.chunk)
    }

    /// Build the module with the features of draw 0.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> PerformerAttention {
        let p = checked_projections(self.validate(), self.shared(), device);
        let d_head = self.d_model / self.n_heads;
        let w = feature_matrix(self.features, d_head, self.seed, 0, device);
        PerformerAttention {
            query: p.query,
            key: p.key,
            value: p.value,
            output: p.output,
            features: Param::from_tensor(w).set_require_grad(false),
            dropout: p.dropout,
            n_heads: p.n_heads,
            chunk: self.chunk,
            seed: self.seed,
            draw: 0,
            redraw_every: self.redraw_every,
        }
    }
}

/// A standard normal value (Box-Muller, 53-bit uniforms).
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let unit = |rng: &mut ChaCha8Rng| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let u1 = 1.0 - unit(rng); // (0, 1]: ln is finite
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The FAVOR+ feature matrix W `[m, dh]`, row-major, from ChaCha8 stream `draw` of `seed`.
///
/// `ceil(m / dh)` Gaussian `dh × dh` blocks, each orthonormalised by (modified) Gram-Schmidt
/// over its rows, stacked and truncated to m rows; then row i is scaled by `|g_i|`, `g_i` an
/// independent Gaussian dh-vector. Same `(seed, draw)`, same matrix.
pub fn orthogonal_random_features(m: usize, dh: usize, seed: u64, draw: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(draw);
    let mut w = Vec::with_capacity(m.div_ceil(dh) * dh * dh);
    while w.len() < m * dh {
        let mut block: Vec<Vec<f64>> = (0..dh)
            .map(|_| (0..dh).map(|_| gaussian(&mut rng)).collect())
            .collect();
        for i in 0..dh {
            let (done, rest) = block.split_at_mut(i);
            let row = &mut rest[0];
            for prev in done.iter() {
                let dot: f64 = row.iter().zip(prev).map(|(a, b)| a * b).sum();
                row.iter_mut().zip(prev).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = row.iter().map(|a| a * a).sum::<f64>().sqrt();
            row.iter_mut().for_each(|a| *a /= norm);
        }
        w.extend(block.into_iter().flatten());
    }
    w.truncate(m * dh);
    for row in w.chunks_mut(dh) {
        let norm = (0..dh)
            .map(|_| gaussian(&mut rng).powi(2))
            .sum::<f64>()
            .sqrt();
        row.iter_mut().for_each(|a| *a *= norm);
    }
    w
}

/// [`orthogonal_random_features`] as a `[m, dh]` tensor on `device`.
fn feature_matrix(m: usize, dh: usize, seed: u64, draw: u64, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = orthogonal_random_features(m, dh, seed, draw)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, [m, dh]), device)
}

/// `(W x', |x'|²/2)` with `x' = x / Dh^{1/4}`.
fn project(x: Tensor<4>, w: Tensor<2>) -> (Tensor<4>, Tensor<4>) {
    let dh = w.dims()[1];
    let x = x.mul_scalar((dh as f64).powf(-0.25));
    let half_sq = (x.clone() * x.clone()).sum_dim(3).mul_scalar(0.5); // [B,H,T,1]
    (x.matmul(w.transpose().unsqueeze::<4>()), half_sq)
}

/// The FAVOR+ positive features `φ(x) = exp(W x' − |x'|²/2) / √m`, `x' = x / Dh^{1/4}`, without
/// stabiliser: `φ(q)·φ(k)` estimates `exp(q·k / √Dh)` without bias.
///
/// # Shapes
/// - x: `[B, H, T, Dh]`
/// - w: `[m, Dh]`
/// - output: `[B, H, T, m]`
pub fn favor_features(x: Tensor<4>, w: Tensor<2>) -> Tensor<4> {
    let m = w.dims()[0];
    let (proj, half_sq) = project(x, w);
    (proj - half_sq).exp().mul_scalar(1.0 / (m as f64).sqrt())
}

/// The query features with the per-row stabiliser: `φ(q) · exp(|q'|²/2 − max_j (W q')_j)`, a
/// factor per query that cancels in the attention ratio (the max is not differentiated).
fn query_features(x: Tensor<4>, w: Tensor<2>) -> Tensor<4> {
    let m = w.dims()[0];
    let (proj, _) = project(x, w);
    let max = proj.clone().max_dim(3).detach();
    (proj - max).exp().mul_scalar(1.0 / (m as f64).sqrt())
}

/// Causal FAVOR+ self-attention (see the module doc).
#[derive(Module, Debug)]
pub struct PerformerAttention {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Output projection.
    pub output: Linear,
    /// Random feature matrix W `[m, Dh]`: saved with the model, never trained
    /// (`require_grad` false).
    pub features: Param<Tensor<2>>,
    /// Dropout on the output.
    pub dropout: Dropout,
    /// Number of heads H.
    pub n_heads: usize,
    /// Chunk length of the causal prefix sums.
    #[module(skip)]
    pub chunk: usize,
    /// Seed of the features.
    #[module(skip)]
    pub seed: u64,
    /// Index of the current draw of the features under `seed` (not in the record: a loaded
    /// model has the saved features, whatever this says).
    #[module(skip)]
    pub draw: u64,
    /// Redraw the features every this many training steps (0 = never).
    #[module(skip)]
    pub redraw_every: u64,
}

impl PerformerAttention {
    /// The same module with the features of draw `draw` of its seed (the features of
    /// `(seed, draw)` are always the same; init uses draw 0). The parameter keeps its id, stays
    /// untrained, and the new features are saved with the model.
    pub fn redraw(mut self, draw: u64) -> Self {
        let w = self.features.val();
        let [m, dh] = w.dims();
        let fresh = feature_matrix(m, dh, self.seed, draw, &w.device());
        self.features = self.features.map(|_| fresh).set_require_grad(false);
        self.draw = draw;
        self
    }

    /// The module after training step `step` (counted from 1): with `redraw_every = N > 0`,
    /// the features of draw `step / N` when N divides `step`, otherwise unchanged. The draw
    /// depends on the step only, so a resumed run redraws exactly as an uninterrupted one (and
    /// the features in use are saved with the model).
    pub fn after_update(self, step: u64) -> Self {
        match self.redraw_every {
            n if n > 0 && step.is_multiple_of(n) => self.redraw(step / n),
            _ => self,
        }
    }
}

impl CarriedState for PerformerAttention {
    type State = FastWeightState;

    fn detach(state: FastWeightState) -> FastWeightState {
        state.detach()
    }

    /// See [`CarriedState::forward_with_state`].
    ///
    /// # Shapes
    /// - state: weights `[B, H, m, Dh]`, normalizer `[B, H, m]`
    fn forward_with_state(
        &self,
        x: Tensor<3>,
        state: Option<FastWeightState>,
    ) -> (Tensor<3>, FastWeightState) {
        let h = self.n_heads;
        let w = self.features.val();
        let q = query_features(split_heads(self.query.forward(x.clone()), h), w.clone());
        let k = favor_features(split_heads(self.key.forward(x.clone()), h), w);
        let v = split_heads(self.value.forward(x), h);
        let (a, state) = causal_linear_attend(q, k, v, state, self.chunk, DEFAULT_EPS);
        (
            self.dropout.forward(self.output.forward(merge_heads(a))),
            state,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carried_state::checks::{causal_at, steps_and_segments_equal_forward};
    use crate::host::max_abs_diff;
    use crate::host::to_vec;
    use crate::seeded::{normal, reinit};
    use burn::optim::GradientsParams;
    use burn::tensor::Bool;

    const D: usize = 8;
    const HEADS: usize = 2;

    /// Seeded projections; features of draw 0 (reinit overwrote them).
    fn layer(chunk: usize, device: &Device) -> PerformerAttention {
        let config = PerformerAttentionConfig {
            chunk,
            ..PerformerAttentionConfig::new(D, HEADS, 16, 11)
        };
        reinit(config.init(device), 3).redraw(0)
    }

    /// φ(q)·φ(k) with m = 2048 estimates exp(q·k/√Dh) within 10% mean relative error.
    #[test]
    fn features_approximate_the_softmax_kernel() {
        let device = mnemo_backend::test_device().inner();
        let (dh, n) = (16, 16);
        let w = feature_matrix(2048, dh, 1, 0, &device);
        let q = normal([1, 1, n, dh], 2, &device).mul_scalar(0.3);
        let k = normal([1, 1, n, dh], 3, &device).mul_scalar(0.3);
        let est = to_vec(
            favor_features(q.clone(), w.clone())
                .matmul(favor_features(k.clone(), w).swap_dims(2, 3)),
        );
        let exact = to_vec(q.matmul(k.swap_dims(2, 3)).mul_scalar(0.25).exp());
        let err: f32 = est
            .iter()
            .zip(&exact)
            .map(|(e, x)| (e - x).abs() / x)
            .sum::<f32>()
            / est.len() as f32;
        assert!(err < 0.1, "mean relative error {err}");
        // An unrelated kernel (no 1/√Dh) is not what it estimates.
        let wrong = est
            .iter()
            .zip(&exact)
            .map(|(e, x)| (e - x * x).abs() / (x * x))
            .sum::<f32>()
            / est.len() as f32;
        assert!(wrong > err);
    }

    /// Rows of a block are orthogonal (m = 20, Dh = 8: blocks of 8, 8 and 4), norms are the
    /// independent chi draws (mean square ≈ Dh, not all equal).
    #[test]
    fn feature_blocks_are_orthogonal() {
        let (m, dh) = (20, 8);
        let w = orthogonal_random_features(m, dh, 4, 0);
        let row = |i: usize| &w[i * dh..(i + 1) * dh];
        let norm = |i: usize| row(i).iter().map(|a| a * a).sum::<f64>().sqrt();
        for i in 0..m {
            for j in 0..m {
                let cos = row(i).iter().zip(row(j)).map(|(a, b)| a * b).sum::<f64>()
                    / (norm(i) * norm(j));
                if i == j {
                    assert!((cos - 1.0).abs() < 1e-12);
                } else if i / dh == j / dh {
                    assert!(
                        cos.abs() < 1e-12,
                        "rows {i} and {j} of one block: cos {cos}"
                    );
                } else {
                    assert!(
                        cos.abs() > 1e-6,
                        "rows {i} and {j} of two blocks are orthogonal"
                    );
                }
            }
        }
        // Distinct norms, mean square ≈ Dh over many rows.
        let big = orthogonal_random_features(2048, 16, 4, 0);
        let sq: Vec<f64> = big
            .chunks(16)
            .map(|r| r.iter().map(|a| a * a).sum())
            .collect();
        let mean = sq.iter().sum::<f64>() / sq.len() as f64;
        let spread = sq.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / sq.len() as f64;
        assert!((mean / 16.0 - 1.0).abs() < 0.05, "mean squared norm {mean}");
        assert!(
            spread.sqrt() > 0.3 * mean,
            "norms barely vary: sd {}",
            spread.sqrt()
        );
    }

    /// With `redraw_every = 3`, steps 3 and 6 switch to draws 1 and 2; other steps keep the
    /// features; without it nothing changes.
    #[test]
    fn features_are_redrawn_every_n_steps() {
        let device = mnemo_backend::test_device();
        let config = PerformerAttentionConfig {
            redraw_every: 3,
            ..PerformerAttentionConfig::new(D, HEADS, 16, 11)
        };
        let draw = |d: u64| to_vec(config.init(&device).redraw(d).features.val());
        let mut module = config.init(&device);
        for step in 1..=7u64 {
            module = module.after_update(step);
            let want = step / 3;
            assert_eq!(module.draw, want, "step {step}");
            assert_eq!(to_vec(module.features.val()), draw(want), "step {step}");
        }
        assert_ne!(draw(1), draw(2));
        let never = PerformerAttentionConfig::new(D, HEADS, 16, 11).init(&device);
        let kept = to_vec(never.features.val());
        let never = (1..=6).fold(never, |m, step| m.after_update(step));
        assert_eq!(to_vec(never.features.val()), kept);
    }

    /// Same (seed, draw), same features; another draw or seed, others; redraw(0) restores.
    #[test]
    fn draws_are_reproducible() {
        let device = mnemo_backend::test_device().inner();
        let config = PerformerAttentionConfig::new(D, HEADS, 12, 5);
        let a = config.init(&device);
        let w0 = to_vec(a.features.val());
        assert_eq!(w0, to_vec(config.init(&device).features.val()));
        let a = a.redraw(1);
        assert_eq!(a.draw, 1);
        let w1 = to_vec(a.features.val());
        assert_ne!(w0, w1);
        assert_eq!(w1, to_vec(config.init(&device).redraw(1).features.val()));
        assert_eq!(w0, to_vec(a.redraw(0).features.val()));
        let other = PerformerAttentionConfig { seed: 6, ..config }.init(&device);
        assert_ne!(w0, to_vec(other.features.val()));
    }

    /// The features get no gradient (the projections do) and are saved: loading a record into
    /// a module of another draw restores them, still untrained.
    #[test]
    fn features_are_saved_but_not_trained() {
        let device = mnemo_backend::test_device();
        let m = layer(4, &device);
        assert!(!m.features.val().is_require_grad());
        let x = normal([1, 5, D], 1, &device);
        let grads = m.forward(x).sum().backward();
        assert!(m.features.val().grad(&grads).is_none());
        let grads = GradientsParams::from_grads(grads, &m);
        assert!(grads.get::<2>(m.features.id).is_none());
        assert!(grads.get::<2>(m.query.weight.id).is_some());

        let loaded = layer(4, &device)
            .redraw(7)
            .load_record(m.clone().into_record());
        assert_eq!(to_vec(loaded.features.val()), to_vec(m.features.val()));
        assert!(!loaded.features.val().is_require_grad());
    }

    /// The module (stabilised query features, chunked prefix sums) equals the quadratic form
    /// with the unstabilised features: masked (φQ φKᵀ) V / row sums.
    #[test]
    fn prefix_sums_equal_quadratic_form() {
        let device = mnemo_backend::test_device().inner();
        let m = layer(3, &device);
        let t = 7;
        let x = normal([2, t, D], 8, &device);
        let w = m.features.val();
        let q = favor_features(split_heads(m.query.forward(x.clone()), HEADS), w.clone());
        let k = favor_features(split_heads(m.key.forward(x.clone()), HEADS), w);
        let v = split_heads(m.value.forward(x.clone()), HEADS);
        let above = Tensor::<2, Bool>::tril_mask([t, t], 0, &device)
            .unsqueeze::<4>()
            .expand([2, HEADS, t, t]);
        let a = q.matmul(k.swap_dims(2, 3)).mask_fill(above, 0.0);
        let y = a.clone().matmul(v) / a.sum_dim(3);
        let want = to_vec(m.output.forward(merge_heads(y)));
        let got = to_vec(m.forward(x));
        assert!(
            max_abs_diff(&got, &want) < 1e-4,
            "max diff {}",
            max_abs_diff(&got, &want)
        );
    }

    /// Token by token and two segments equal the parallel pass; perturbing position 4 changes
    /// outputs from 4 on and none before.
    #[test]
    fn step_equals_forward_and_causal() {
        let device = mnemo_backend::test_device().inner();
        let m = layer(3, &device);
        let x = normal([2, 7, D], 9, &device);
        steps_and_segments_equal_forward(&m, x.clone(), 5, "performer");
        causal_at(&m, x.slice_dim(0, 0..1), 4, 4, "performer");
    }

    #[test]
    fn validate_names_the_field() {
        let bad = PerformerAttentionConfig::new(8, 2, 0, 1);
        assert!(bad.validate().unwrap_err().starts_with("features"));
        assert!(
            PerformerAttentionConfig::new(8, 3, 4, 1)
                .validate()
                .unwrap_err()
                .starts_with("n_heads")
        );
    }
}
