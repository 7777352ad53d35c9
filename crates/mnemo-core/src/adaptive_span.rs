//! Adaptive attention span: a learnt soft limit on how far back each head attends.
//!
//! Sukhbaatar, Grave, Bojanowski & Joulin, "Adaptive Attention Span in Transformers" (ACL 2019),
//! as the Feedback Transformer's official code uses it (`modules/adaptive_span.py`,
//! `modules/adaptive_mask.py`; `--adapt-span` in its enwik8 script). Each head h learns a ratio
//! `z_h` (the span is `z_h·S` of the maximum span S) and multiplies its attention probabilities
//! by a soft mask that is 1 up to the span, falls linearly to 0 over a ramp of R positions, and is
//! 0 beyond; the masked probabilities are renormalised.
//!
//! # Distance convention
//! A window of n keys is chronological (oldest first), as in
//! [`RelativePositions::window`](crate::relative_position::RelativePositions::window): slot
//! `j ∈ 0..n` holds position-table row `k = n − 1 − j`, the newest key row 0. The official code
//! attends only to earlier positions (`min_distance = 1`), so slot j is at distance `d = n − j`
//! (`d = k + 1`). The official mask is a template `x = −S+1 ..= 0` over the S rows, oldest first,
//! with `m(x) = clamp((x + z·S)/R + 1, 0, 1)`, and a window of `n < S` keys reads its last n
//! entries; so `x = −k` and
//!
//! ```text
//! m_h(k) = clamp((z_h·S − k)/R + 1, 0, 1)          k = n − 1 − j  (table row)
//!        = clamp((z_h·S + 1 − d)/R + 1, 0, 1)      d = n − j      (distance, min_distance 1)
//! ```
//!
//! The mask is 1 for `d ≤ z_h·S + 1` and 0 for `d ≥ z_h·S + R + 1`. A model that attends to
//! itself (`min_distance = 0`) uses the same rows, `k = d`: the mask follows the table row, so
//! that in both cases the span covers the S rows of the position table.
//!
//! # Training and trimming
//! The span loss `c·S·mean(z)` ([`AdaptiveSpan::loss`]) is added to the training loss per layer,
//! and z is clamped to `[0, 1]` after every update ([`AdaptiveSpan::clamped`]). Since the mask is
//! 0 beyond the largest span plus the ramp, the oldest [`AdaptiveSpan::trim_len`] keys of a full
//! window of S can be skipped (not projected, not attended): the output changes only through
//! the renormaliser's `1e-8`, relative to the softmax sums of the two windows (< 1e-6 in tests).
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor, TensorData};

use crate::host::to_vec;

/// Added to the sum of the masked probabilities before renormalising (the official `1e-8`), so
/// that a row the mask zeroes entirely stays 0 instead of NaN.
pub const RENORM_EPS: f64 = 1e-8;

/// Attention probabilities times a span mask, renormalised over the keys as the official code
/// does: `a·m / (Σ_keys a·m + 1e-8)`.
///
/// # Shapes
/// - attn: `[B, H, Tq, Tk]`
/// - mask: broadcasts to it (`[1, H, Tq, Tk]`, `[1, 1, 1, Tk]`, …)
/// - output: `[B, H, Tq, Tk]`
pub fn apply_mask(attn: Tensor<4>, mask: Tensor<4>) -> Tensor<4> {
    let masked = attn * mask;
    let total = masked.clone().sum_dim(3).add_scalar(RENORM_EPS);
    masked / total
}

/// Configuration of [`AdaptiveSpan`]; the defaults of [`new`](Self::new) are the official
/// command-line defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveSpanConfig {
    /// Maximum span S (the official `attn_lim`): the number of position-table rows.
    pub max_span: usize,
    /// Ramp length R ≥ 1 over which the mask falls from 1 to 0 (`--adapt-span-len`, 32).
    pub ramp: usize,
    /// Span loss coefficient c (`--adapt-span-loss`, 0; 5e-7 in the paper's enwik8 model).
    pub loss: f64,
    /// Initial ratio z0 of every head (`--adapt-span-init`, 0).
    pub init: f64,
    /// Number of heads H: one ratio per head (1: one span shared by the heads of a layer, the
    /// official `--adapt-span-layer`).
    pub n_heads: usize,
    /// Trimmed lengths are multiples of this step ≥ 1 (`--adapt-span-trim-step`, 64).
    pub trim_step: usize,
    /// Whether keys the mask zeroes are skipped ([`AdaptiveSpan::trim_len`]; false: always the
    /// full window, for measuring what trimming saves).
    pub trim: bool,
}

impl AdaptiveSpanConfig {
    /// H heads and maximum span S, with the official defaults: ramp 32, loss 0, init 0, trim
    /// step 64.
    pub fn new(n_heads: usize, max_span: usize) -> Self {
        Self {
            max_span,
            ramp: 32,
            loss: 0.0,
            init: 0.0,
            n_heads,
            trim_step: 64,
            trim: true,
        }
    }

    /// Build the module, every ratio `z_h = init`.
    ///
    /// # Panics
    /// If `max_span`, `ramp`, `n_heads` or `trim_step` is 0 (the panic names the field).
    pub fn init(&self, device: &Device) -> AdaptiveSpan {
        for (name, value) in [
            ("max_span", self.max_span),
            ("ramp", self.ramp),
            ("n_heads", self.n_heads),
            ("trim_step", self.trim_step),
        ] {
            assert!(value >= 1, "adaptive span: {name} must be at least 1");
        }
        AdaptiveSpan {
            ratio: Initializer::Constant { value: self.init }.init([self.n_heads], device),
            max_span: self.max_span,
            ramp: self.ramp,
            loss_coeff: self.loss,
            trim_step: self.trim_step,
            trim: self.trim,
        }
    }
}

/// A learnt span ratio per head and the soft mask it defines; see the [module docs](self).
#[derive(Module, Debug)]
pub struct AdaptiveSpan {
    /// The ratios z (span `z_h·S`), kept in `[0, 1]` by [`clamped`](Self::clamped). Shape `[H]`.
    pub ratio: Param<Tensor<1>>,
    /// Maximum span S.
    pub max_span: usize,
    /// Ramp length R.
    pub ramp: usize,
    /// Span loss coefficient c.
    pub loss_coeff: f64,
    /// Trim step.
    pub trim_step: usize,
    /// Whether [`trim_len`](Self::trim_len) trims (false: always 0).
    pub trim: bool,
}

impl AdaptiveSpan {
    /// The soft mask over a chronological window of `n ≤ S` keys: slot j (row `k = n − 1 − j`)
    /// gets `clamp((z_h·S − k)/R + 1, 0, 1)`.
    ///
    /// # Shapes
    /// - output: `[H, n]`
    ///
    /// # Panics
    /// If `n` exceeds the maximum span S.
    pub fn mask(&self, n: usize) -> Tensor<2> {
        let [h] = self.ratio.dims();
        self.mask_rows(self.window_rows(n)).reshape([h, n])
    }

    /// The derivative of [`mask`](Self::mask) with respect to each head's ratio: `S/R` where
    /// the unclamped value `(z_h·S − k)/R + 1` lies in `[0, 1]`, else 0 (burn's and PyTorch's
    /// clamp pass the gradient at the bounds). For a hand-written backward.
    ///
    /// # Shapes
    /// - output: `[H, n]`
    pub fn mask_slope(&self, n: usize) -> Tensor<2> {
        let z = self.ratio.val();
        let [h] = z.dims();
        let shift = z.mul_scalar(self.max_span as f64).reshape([h, 1]);
        let x = (shift - self.window_rows(n))
            .div_scalar(self.ramp as f64)
            .add_scalar(1.0);
        let inside = x.clone().greater_equal_elem(0.0).float() * x.lower_equal_elem(1.0).float();
        inside.mul_scalar(self.max_span as f64 / self.ramp as f64)
    }

    /// The soft mask at explicit table rows, one per (query, key) pair: `clamp((z_h·S −
    /// k)/R + 1, 0, 1)` with k = `rows[q, i]` (e.g. `q − i − min_distance` in a parallel causal
    /// pass). Pairs the attention masks out (probability 0) may hold any finite row.
    ///
    /// # Shapes
    /// - rows: `[Tq, Tk]` (or `[1, Tk]`, the same rows for every query)
    /// - output: `[H, Tq, Tk]`
    pub fn mask_rows(&self, rows: Tensor<2>) -> Tensor<3> {
        let z = self.ratio.val();
        let [h] = z.dims();
        let shift = z.mul_scalar(self.max_span as f64).reshape([h, 1, 1]);
        (shift - rows.unsqueeze::<3>())
            .div_scalar(self.ramp as f64)
            .add_scalar(1.0)
            .clamp(0.0, 1.0)
    }

    /// Attention probabilities over a chronological window of `n ≤ S` keys times the mask,
    /// renormalised over the keys as the official code does: `a·m / (Σ_keys a·m + 1e-8)`.
    ///
    /// # Shapes
    /// - attn: `[B, H, T, n]`, keys oldest first (H must equal the module's heads, or the module
    ///   has one shared ratio)
    /// - output: `[B, H, T, n]`
    ///
    /// # Panics
    /// If `n` exceeds the maximum span S, or the heads differ.
    pub fn apply(&self, attn: Tensor<4>) -> Tensor<4> {
        let n = attn.dims()[3];
        self.apply_rows(attn, self.window_rows(n))
    }

    /// [`apply`](Self::apply) with the mask at explicit table rows ([`mask_rows`](Self::mask_rows)),
    /// for attention whose keys are not one window shared by every query (a parallel causal
    /// pass over a segment).
    ///
    /// # Shapes
    /// - attn: `[B, H, Tq, Tk]`
    /// - rows: `[Tq, Tk]` or `[1, Tk]`
    /// - output: `[B, H, Tq, Tk]`
    pub fn apply_rows(&self, attn: Tensor<4>, rows: Tensor<2>) -> Tensor<4> {
        let [_, h, _, _] = attn.dims();
        let [tq, tk] = rows.dims();
        let [heads] = self.ratio.dims();
        assert!(
            heads == h || heads == 1,
            "adaptive span: attention has {h} heads, the span has {heads} ratios"
        );
        apply_mask(attn, self.mask_rows(rows).reshape([1, heads, tq, tk]))
    }

    /// The table rows `n − 1, …, 0` of a chronological window of n keys (the official
    /// template's last n entries, negated).
    ///
    /// # Shapes
    /// - output: `[1, n]`
    ///
    /// # Panics
    /// If `n` exceeds the maximum span S.
    pub fn window_rows(&self, n: usize) -> Tensor<2> {
        let s = self.max_span;
        assert!(n <= s, "adaptive span: window of {n} exceeds max_span {s}");
        let rows: Vec<f32> = (0..n).rev().map(|k| k as f32).collect();
        Tensor::from_data(TensorData::new(rows, [1, n]), &self.ratio.device())
    }

    /// The span loss term of this layer, `c·S·mean(z)` (added to the training loss).
    ///
    /// # Shapes
    /// - output: `[1]`
    pub fn loss(&self) -> Tensor<1> {
        self.ratio
            .val()
            .mean()
            .mul_scalar(self.loss_coeff * self.max_span as f64)
    }

    /// The module with z clamped to `[0, 1]`, as the official code does after each update. The
    /// parameter keeps its id and gradient requirement (the clamp itself is not differentiated).
    pub fn clamped(mut self) -> Self {
        self.ratio = self.ratio.map(|z| {
            let require_grad = z.is_require_grad();
            // Off the graph first, so that the clamped value is a new leaf.
            let z = z.detach().set_require_grad(false).clamp(0.0, 1.0);
            z.set_require_grad(require_grad)
        });
        self
    }

    /// How many of the oldest keys of a full window of S can be skipped, the official
    /// `get_trim_len`: with `w = min(S, max(0, ⌈max_h(z_h)·S + R⌉))` the keys the widest mask
    /// can reach, `min(S − 1, S − w)` rounded down to a multiple of the trim step. The mask is 0
    /// on every trimmed key for every head. Always 0 when the config turned trimming off.
    pub fn trim_len(&self) -> usize {
        if !self.trim {
            return 0;
        }
        let s = self.max_span;
        let widest = to_vec(self.ratio.val())
            .into_iter()
            .fold(f32::NEG_INFINITY, f32::max);
        // As the official code: the f32 ratio read back as a double, then the span and ramp.
        let reach = (widest as f64 * s as f64 + self.ramp as f64).ceil();
        let reach = reach.clamp(0.0, s as f64) as usize;
        let trim = (s - 1).min(s - reach);
        trim / self.trim_step * self.trim_step
    }

    /// The keys a window keeps after trimming: `S − trim_len()`, the newest ones.
    pub fn window_len(&self) -> usize {
        self.max_span - self.trim_len()
    }

    /// The learnt span `z_h·S` of each head (for reports).
    pub fn current_spans(&self) -> Vec<f32> {
        let s = self.max_span as f32;
        to_vec(self.ratio.val())
            .into_iter()
            .map(|z| z * s)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{check_finite_differences, max_abs_diff, max_abs_gap};
    use crate::seeded::normal;
    use burn::tensor::activation::softmax;

    /// A span of S = `max_span`, ramp R, trim step 1 and the given ratios, one per head.
    fn span(max_span: usize, ramp: usize, ratios: &[f32], device: &Device) -> AdaptiveSpan {
        let mut config = AdaptiveSpanConfig::new(ratios.len(), max_span);
        config.ramp = ramp;
        config.trim_step = 1;
        with_ratios(config.init(device), ratios)
    }

    /// `span` with its ratios replaced by `ratios` (a new leaf parameter).
    fn with_ratios(mut span: AdaptiveSpan, ratios: &[f32]) -> AdaptiveSpan {
        let device = span.ratio.device();
        let data = TensorData::new(ratios.to_vec(), [ratios.len()]);
        span.ratio = Param::from_tensor(Tensor::from_data(data, &device));
        span
    }

    /// Softmax probabilities of seeded scores.
    ///
    /// # Shapes
    /// - output: `[B, H, T, n]`
    fn probabilities(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
        softmax(normal(shape, seed, device), 3)
    }

    #[test]
    fn mask_matches_a_hand_computed_example() {
        let device = mnemo_backend::test_device();
        // S = 4, R = 2; z·S = 0, 1, 1.5. Slot j is at distance d = 4 − j (row k = 3 − j):
        //   head 0: k = 3, 2, 1, 0 → (0 − k)/2 + 1 = −0.5, 0, 0.5, 1 → 0, 0, 0.5, 1
        //   head 1:                 (1 − k)/2 + 1 = 0, 0.5, 1, 1.5 → 0, 0.5, 1, 1
        //   head 2:               (1.5 − k)/2 + 1 = 0.25, 0.75, 1.25, 1.75 → 0.25, 0.75, 1, 1
        let span = span(4, 2, &[0.0, 0.25, 0.375], &device);
        let want = [
            0.0, 0.0, 0.5, 1.0, //
            0.0, 0.5, 1.0, 1.0, //
            0.25, 0.75, 1.0, 1.0,
        ];
        assert_eq!(to_vec(span.mask(4)), want);
        // A trimmed window of 2 keys is the newest end of the full one.
        let want = [0.5, 1.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(to_vec(span.mask(2)), want);
        assert_eq!(span.current_spans(), vec![0.0, 1.0, 1.5]);
    }

    #[test]
    fn causal_rows_mask_each_query_as_its_own_window() {
        let device = mnemo_backend::test_device();
        // S = 6, R = 2; a parallel causal pass over T = 5 that attends to itself: query t sees
        // keys 0..=t at rows k = t − i, the future masked out (row 0 there, as
        // RelativePositions' index).
        let s = span(6, 2, &[0.15, 0.25], &device);
        let t_len: usize = 5;
        let rows: Vec<f32> = (0..t_len)
            .flat_map(|t| (0..t_len).map(move |i| t.saturating_sub(i) as f32))
            .collect();
        let rows = Tensor::<2>::from_data(TensorData::new(rows, [t_len, t_len]), &device);
        let future: Vec<bool> = (0..t_len)
            .flat_map(|t| (0..t_len).map(move |i| i > t))
            .collect();
        let future = Tensor::<2, burn::tensor::Bool>::from_data(
            TensorData::new(future, [t_len, t_len]),
            &device,
        );
        let scores = normal([2, 2, t_len, t_len], 7, &device);
        let masked_scores = scores.clone().mask_fill(
            future.unsqueeze::<4>().expand([2, 2, t_len, t_len]),
            crate::attention::MASKED,
        );
        let out = s.apply_rows(softmax(masked_scores, 3), rows);
        for t in 0..t_len {
            let row = |x: Tensor<4>, keys| x.slice_dim(2, t..t + 1).slice_dim(3, keys);
            let window = s.apply(softmax(row(scores.clone(), 0..t + 1), 3));
            let gap = max_abs_gap(row(out.clone(), 0..t + 1), window);
            assert!(gap < 1e-6, "query {t}: max |Δ| = {gap}");
            if t + 1 < t_len {
                let ahead = to_vec(row(out.clone(), t + 1..t_len));
                assert!(ahead.iter().all(|&a| a == 0.0), "query {t} sees the future");
            }
        }
        // The mask took effect: the oldest keys of the last query are out of both spans.
        let last = to_vec(out.slice_dim(2, t_len - 1..t_len).slice_dim(3, 0..1));
        assert!(last.iter().all(|&a| a == 0.0), "{last:?}");
    }

    #[test]
    fn apply_renormalises_the_masked_rows() {
        let device = mnemo_backend::test_device();
        let span = span(6, 2, &[0.2, 0.5], &device);
        let attn = probabilities([2, 2, 3, 6], 1, &device);
        let out = span.apply(attn.clone());
        let sums = to_vec(out.clone().sum_dim(3));
        assert!(max_abs_diff(&sums, &[1.0; 12]) < 1e-5, "row sums {sums:?}");
        // Slots beyond the span and ramp are zero; the mask changed the probabilities.
        let mask = to_vec(span.mask(6));
        let values = to_vec(out.clone());
        for (i, v) in values.iter().enumerate() {
            let (head, slot) = ((i / 18) % 2, i % 6);
            if mask[head * 6 + slot] == 0.0 {
                assert_eq!(*v, 0.0, "masked slot {slot} of head {head}");
            }
        }
        assert!(max_abs_gap(out, attn) > 1e-2, "the mask changed nothing");
    }

    #[test]
    fn full_span_and_ramp_keep_the_softmax() {
        let device = mnemo_backend::test_device();
        // z = 1: m(k) = (S − k)/R + 1 ≥ 1 for every row k < S.
        let span = span(5, 3, &[1.0, 1.0], &device);
        assert_eq!(to_vec(span.mask(5)), vec![1.0; 10]);
        let attn = probabilities([2, 2, 4, 5], 2, &device);
        let gap = max_abs_gap(span.apply(attn.clone()), attn);
        assert!(gap < 1e-6, "max |Δ| = {gap}");
    }

    #[test]
    fn ratio_gradient_matches_finite_differences() {
        let device = mnemo_backend::test_device();
        // S = 8, R = 3, z·S = 2.4 and 4.4: no slot sits on a kink of the clamp within ±ε.
        let ratios = [0.3f32, 0.55];
        let mut base = span(8, 3, &ratios, &device);
        base.loss_coeff = 0.05;
        let attn = probabilities([2, 2, 3, 8], 3, &device);
        let probe = normal([2, 2, 3, 8], 4, &device);
        let loss =
            |s: &AdaptiveSpan| (s.apply(attn.clone()) * probe.clone()).sum() + s.loss().sum();
        let grads = loss(&base).backward();
        let analytic = to_vec(base.ratio.grad(&grads).expect("gradient of z"));
        let loss_at = |values: Vec<f32>| {
            let mut moved = with_ratios(span(8, 3, &ratios, &device), &values);
            moved.loss_coeff = 0.05;
            loss(&moved).into_scalar::<f32>()
        };
        check_finite_differences("z", &analytic, &ratios, &[0, 1], loss_at).unwrap();
        // The mask's part is not negligible next to the span loss's 0.2 below.
        let through_mask: Vec<f32> = analytic.iter().map(|g| g - 0.2).collect();
        assert!(
            max_abs_diff(&through_mask, &[0.0, 0.0]) > 1e-2,
            "{analytic:?}"
        );
        // The span loss alone: d(c·S·mean z)/dz_h = c·S/H = 0.05·8/2.
        let grads = base.loss().sum().backward();
        let analytic = to_vec(base.ratio.grad(&grads).expect("gradient of z"));
        assert!(max_abs_diff(&analytic, &[0.2, 0.2]) < 1e-6, "{analytic:?}");
    }

    #[test]
    fn mask_slope_is_the_autodiff_derivative_of_the_mask() {
        let device = mnemo_backend::test_device();
        // z·S = 2 and 4.5 with R = 2: head 0 sits exactly on both bounds of the clamp (rows 2
        // and 4), where the gradient passes; head 1 is inside the ramp at rows 5 and 6.
        let base = span(8, 2, &[0.25, 0.5625], &device);
        let probe = normal([2, 8], 5, &device);
        let grads = (base.mask(8) * probe.clone()).sum().backward();
        let autodiff = to_vec(base.ratio.grad(&grads).expect("gradient of z"));
        let manual = to_vec((base.mask_slope(8) * probe.inner()).sum_dim(1));
        assert!(
            max_abs_diff(&manual, &autodiff) < 1e-5,
            "{manual:?} vs {autodiff:?}"
        );
        let slope = to_vec(base.mask_slope(8));
        // Head 0: rows k = 7 − j; unclamped (2 − k)/2 + 1 ∈ [0, 1] for k = 2, 3, 4.
        let inside: Vec<f32> = (0..8)
            .map(|j| if (2..=4).contains(&(7 - j)) { 4.0 } else { 0.0 })
            .collect();
        assert_eq!(slope[..8], inside[..]);
    }

    #[test]
    fn clamped_keeps_ratios_in_the_unit_interval() {
        let device = mnemo_backend::test_device();
        let mut span = span(8, 2, &[-0.25, 0.5, 1.5], &device);
        span.loss_coeff = 1.0;
        let id = span.ratio.id;
        let span = span.clamped();
        assert_eq!(to_vec(span.ratio.val()), vec![0.0, 0.5, 1.0]);
        assert_eq!(span.ratio.id, id, "the parameter keeps its id");
        // Still a trained leaf: d(S·mean z)/dz_h = S/H.
        let grads = span.loss().sum().backward();
        let grad = to_vec(span.ratio.grad(&grads).expect("gradient of z"));
        assert!(max_abs_diff(&grad, &[8.0 / 3.0; 3]) < 1e-5, "{grad:?}");
    }

    #[test]
    fn trim_len_follows_the_official_rule() {
        let device = mnemo_backend::test_device();
        // S = 256, R = 32, widest z = 0.3: ⌈76.8 + 32⌉ = 109 keys reachable, 147 trimmable,
        // 128 with the official step 64, 147 with step 1.
        let mut s = span(256, 32, &[0.1, 0.3], &device);
        assert_eq!(s.trim_len(), 147);
        s.trim_step = 64;
        assert_eq!((s.trim_len(), s.window_len()), (128, 128));
        // Full ratio: nothing to trim; a ratio below −R/S reaches nothing: all but one key.
        assert_eq!(span(16, 4, &[1.0], &device).trim_len(), 0);
        assert_eq!(span(16, 4, &[-0.5], &device).trim_len(), 15);
    }

    #[test]
    fn trimmed_window_attends_as_the_full_one() {
        let device = mnemo_backend::test_device();
        // S = 12, R = 2, widest z·S = 3.6: ⌈5.6⌉ = 6 keys kept, 6 trimmed.
        let s = span(12, 2, &[0.1, 0.3], &device);
        let trim = s.trim_len();
        assert_eq!(trim, 6);
        let scores = normal([2, 2, 3, 12], 5, &device);
        let full = s.apply(softmax(scores.clone(), 3));
        let trimmed = s.apply(softmax(scores.slice_dim(3, trim..12), 3));
        let dropped = full.clone().slice_dim(3, 0..trim);
        assert_eq!(max_abs_gap(dropped.clone(), dropped.zeros_like()), 0.0);
        let gap = max_abs_gap(full.clone().slice_dim(3, trim..12), trimmed.clone());
        assert!(gap < 1e-6, "max |Δ| = {gap}");
        // The trim is tight: the oldest kept key is still inside the widest head's ramp.
        let kept = to_vec(s.mask(12).slice_dim(1, trim..trim + 1));
        assert!(
            kept[1] > 0.0,
            "oldest kept key masked for every head: {kept:?}"
        );
        // The outputs over values agree too.
        let v = normal([2, 2, 12, 3], 6, &device);
        let gap = max_abs_gap(
            full.matmul(v.clone()),
            trimmed.matmul(v.slice_dim(2, trim..12)),
        );
        assert!(gap < 1e-6, "outputs: max |Δ| = {gap}");
    }
}
