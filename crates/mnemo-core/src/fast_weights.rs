//! Fast weights: the prefix-sum machinery of kernelized causal attention, shared by
//! [`linear_attention`](crate::linear_attention) and [`performer`](crate::performer).
//!
//! **Sum update** (Katharopoulos, Vyas, Pappas & Fleuret 2020, "Transformers are RNNs: Fast
//! Autoregressive Transformers with Linear Attention"): with a positive feature map φ, causal
//! attention `softmax`-free and linear in T,
//!
//! ```text
//! S_t = S_0 + Σ_{i≤t} φ(k_i) v_iᵀ        (the fast weights, [F, Dh])
//! z_t = z_0 + Σ_{i≤t} φ(k_i)             (the normaliser, [F])
//! y_t = φ(q_t)ᵀ S_t / (φ(q_t)ᵀ z_t + ε)
//! ```
//!
//! computed in chunks of C positions: inside a chunk the masked quadratic product
//! `(φQ φKᵀ ⊙ M) V` with M lower-triangular (diagonal included), across chunks the carried
//! `(S, z)`. Cost `O(T·C·(F + Dh) + T·F·Dh)` instead of `O(T²)`.
//!
//! **Delta update** (Schlag, Irie & Schmidhuber 2021, "Linear Transformers Are Secretly Fast
//! Weight Programmers"): the fast weights are written with the delta rule, replacing the value
//! stored under a key instead of adding to it,
//!
//! ```text
//! v̄_t = W_{t-1}ᵀ φ(k_t)
//! W_t = W_{t-1} + β_t φ(k_t) (v_t − v̄_t)ᵀ,   β_t ∈ (0, 1)
//! y_t = W_tᵀ φ(q_t)
//! ```
//!
//! with φ sum-normalised (`φ(x) / Σ_j φ(x)_j`, done here), so no denominator is needed;
//! computed in chunks of C positions too: inside a chunk the writes are one unit
//! lower-triangular solve (Yang et al. 2024), across chunks the carried W
//! ([`delta_rule_attend`]).
use burn::tensor::{Bool, Device, Tensor, TensorData};

/// The ε added to the denominator of [`causal_linear_attend`] by the attention modules.
pub const DEFAULT_EPS: f64 = 1e-6;

/// The carried state of the sum update: fast weights and normaliser after some positions.
///
/// Returned by [`causal_linear_attend`] and passed back to it to continue a sequence: attending
/// over two segments with the state carried from the first to the second equals attending over
/// their concatenation.
///
/// # Shapes
/// - weights: `[B, H, F, Dh]`, `Σ_i φ(k_i) v_iᵀ`
/// - normalizer: `[B, H, F]`, `Σ_i φ(k_i)`
#[derive(Debug, Clone)]
pub struct FastWeightState {
    /// `S = Σ_i φ(k_i) v_iᵀ`. Shape `[B, H, F, Dh]`.
    pub weights: Tensor<4>,
    /// `z = Σ_i φ(k_i)`. Shape `[B, H, F]`.
    pub normalizer: Tensor<3>,
}

impl FastWeightState {
    /// The state before any position: all zeros.
    pub fn zeros(b: usize, h: usize, f: usize, dh: usize, device: &Device) -> Self {
        Self {
            weights: Tensor::zeros([b, h, f, dh], device),
            normalizer: Tensor::zeros([b, h, f], device),
        }
    }

    /// The same state cut from the autodiff graph (to carry it across a truncated-BPTT
    /// boundary).
    pub fn detach(self) -> Self {
        Self {
            weights: self.weights.detach(),
            normalizer: self.normalizer.detach(),
        }
    }
}

/// Causal kernelized attention with the sum update, in chunks of `chunk` positions.
///
/// `y_t = φ(q_t)ᵀ S_t / (φ(q_t)ᵀ z_t + eps)` with `S_t`, `z_t` the initial `state` (zeros if
/// None) plus the sums over positions `≤ t` (see the module doc). T need not be a multiple of
/// `chunk`; the result does not depend on `chunk` (up to rounding). The features must be such
/// that the denominator is positive (φ ≥ 0 with positive sums, e.g. `elu + 1` or FAVOR+).
///
/// Returns the outputs and the state after the last position.
///
/// # Shapes
/// - phi_q, phi_k: `[B, H, T, F]`
/// - v: `[B, H, T, Dh]`
/// - output: `[B, H, T, Dh]`
///
/// # Panics
/// If `chunk` is 0 or T is 0.
pub fn causal_linear_attend(
    phi_q: Tensor<4>,
    phi_k: Tensor<4>,
    v: Tensor<4>,
    state: Option<FastWeightState>,
    chunk: usize,
    eps: f64,
) -> (Tensor<4>, FastWeightState) {
    assert!(chunk >= 1, "chunk: must be at least 1");
    let [b, h, t, f] = phi_q.dims();
    assert!(t >= 1, "phi_q: needs at least one position");
    let dh = v.dims()[3];
    let device = phi_q.device();
    let FastWeightState {
        mut weights,
        mut normalizer,
    } = state.unwrap_or_else(|| FastWeightState::zeros(b, h, f, dh, &device));
    let mut outputs = Vec::with_capacity(t.div_ceil(chunk));
    let mut mask: Option<(usize, Tensor<4, Bool>)> = None;
    let chunks = phi_q
        .split(chunk, 2)
        .into_iter()
        .zip(phi_k.split(chunk, 2))
        .zip(v.split(chunk, 2));
    for ((q, k), v) in chunks {
        let l = q.dims()[2];
        // True strictly above the diagonal: a query never sees a later key of its chunk.
        let above = match &mask {
            Some((n, m)) if *n == l => m.clone(),
            _ => {
                let m = Tensor::<2, Bool>::tril_mask([l, l], 0, &device)
                    .unsqueeze::<4>()
                    .expand([b, h, l, l]);
                mask = Some((l, m.clone()));
                m
            }
        };
        let scores = q
            .clone()
            .matmul(k.clone().swap_dims(2, 3))
            .mask_fill(above, 0.0); // [B,H,L,L]
        let num = q.clone().matmul(weights.clone()) + scores.clone().matmul(v.clone());
        let den = q.matmul(normalizer.clone().unsqueeze_dim::<4>(3)) + scores.sum_dim(3); // [B,H,L,1]
        outputs.push(num / den.add_scalar(eps));
        weights = weights + k.clone().swap_dims(2, 3).matmul(v);
        normalizer = normalizer + k.sum_dim(2).squeeze_dim::<3>(2);
    }
    let y = match outputs.len() {
        1 => outputs.pop().expect("one chunk"),
        _ => Tensor::cat(outputs, 2),
    };
    (
        y,
        FastWeightState {
            weights,
            normalizer,
        },
    )
}

/// `x / Σ_j x_j` over the last dimension (the sum normalisation of Schlag et al. 2021).
///
/// # Shapes
/// - x: `[B, H, T, F]`, non-negative with positive row sums
/// - output: `[B, H, T, F]`
pub fn sum_normalize(x: Tensor<4>) -> Tensor<4> {
    let sum = x.clone().sum_dim(3);
    x / sum
}

/// Causal kernelized attention with the delta update (Schlag et al. 2021), in chunks of
/// `chunk` positions: inside a chunk the delta rule's writes are solved at once (the "WY" /
/// UT form of Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over
/// Sequence Length"), across chunks `W` is carried, so a segment of T positions costs
/// `⌈T/chunk⌉` rounds of batched matrix products instead of T rounds of per-position ones, and
/// autodiff keeps one `W` per chunk instead of one per position.
///
/// The features are sum-normalised **here** (`φ / Σφ`, see [`sum_normalize`]): pass the raw,
/// non-negative φ(q) and φ(k). Per position, from `W_0 = state` (zeros if None):
///
/// ```text
/// v̄_t = W_{t-1}ᵀφ(k_t),   W_t = W_{t-1} + β_t φ(k_t)(v_t − v̄_t)ᵀ,   y_t = W_tᵀφ(q_t)
/// ```
///
/// Inside a chunk of rows K, Q, V, β starting from W₀ the writes `u_t = β_t(v_t − v̄_t)` (so
/// `W_t = W_{t-1} + k_t u_tᵀ`) solve the unit lower-triangular system
///
/// ```text
/// (I + diag(β)·strict_tril(K Kᵀ)) U = diag(β)(V − K W₀)
/// Y = Q W₀ + tril(Q Kᵀ) U,    W = W₀ + Kᵀ U
/// ```
///
/// with the triangular inverse built by recursive doubling of its diagonal blocks
/// ([`unit_lower_inverse`]). Exact in exact arithmetic: the same outputs and `W_T` as the
/// position-by-position recurrence for every `chunk` (tested against it in f64), and passing
/// `W_T` back continues the sequence exactly.
///
/// # Shapes
/// - phi_q, phi_k: `[B, H, T, F]`, non-negative with positive row sums
/// - v: `[B, H, T, Dh]`
/// - beta: `[B, H, T]`, write strengths in `(0, 1)`
/// - state, returned state: `[B, H, F, Dh]`
/// - output: `[B, H, T, Dh]`
///
/// # Panics
/// If T or `chunk` is 0.
pub fn delta_rule_attend(
    phi_q: Tensor<4>,
    phi_k: Tensor<4>,
    v: Tensor<4>,
    beta: Tensor<3>,
    state: Option<Tensor<4>>,
    chunk: usize,
) -> (Tensor<4>, Tensor<4>) {
    assert!(chunk >= 1, "chunk: must be at least 1");
    let [b, h, t, f] = phi_q.dims();
    assert!(t >= 1, "phi_q: needs at least one position");
    let dh = v.dims()[3];
    let q = sum_normalize(phi_q);
    let k = sum_normalize(phi_k);
    let beta = beta.unsqueeze_dim::<4>(3); // [B,H,T,1]
    let mut w = state.unwrap_or_else(|| Tensor::zeros([b, h, f, dh], &q.device()));
    let mut outputs = Vec::with_capacity(t.div_ceil(chunk));
    let chunks = q
        .split(chunk, 2)
        .into_iter()
        .zip(k.split(chunk, 2))
        .zip(v.split(chunk, 2))
        .zip(beta.split(chunk, 2));
    let mut masks: Option<(usize, DeltaMasks)> = None;
    for (((q, k), v), beta) in chunks {
        let l = q.dims()[2];
        if l == 1 {
            // One position: the recurrence itself (decoding), no system to solve.
            let recalled = k.clone().matmul(w.clone()); // [B,H,1,Dh]
            w = w + k.swap_dims(2, 3).matmul((v - recalled) * beta);
            outputs.push(q.matmul(w.clone()));
            continue;
        }
        let m = match &masks {
            Some((n, m)) if *n == l => m.clone(),
            _ => {
                let m = DeltaMasks::new(l, &q.device());
                masks = Some((l, m.clone()));
                m
            }
        };
        let kt = k.clone().swap_dims(2, 3); // [B,H,F,L]
        // L = diag(β) · strict_tril(K Kᵀ): row t holds β_t k_t·k_i for i < t.
        let lower = k.clone().matmul(kt.clone()) * m.strict.clone() * beta.clone(); // [B,H,L,L]
        let u = unit_lower_inverse(lower, &m).matmul((v - k.matmul(w.clone())) * beta); // [B,H,L,Dh]
        let scores = q.clone().matmul(kt.clone()) * m.lower.clone(); // [B,H,L,L]
        outputs.push(q.matmul(w.clone()) + scores.matmul(u.clone()));
        w = w + kt.matmul(u);
    }
    let y = match outputs.len() {
        1 => outputs.pop().expect("one chunk"),
        _ => Tensor::cat(outputs, 2),
    };
    (y, w)
}

/// The constant 0/1 matrices of a chunk of `l` positions, `[1, 1, l, l]` each.
#[derive(Debug, Clone)]
struct DeltaMasks {
    /// 1 strictly below the diagonal.
    strict: Tensor<4>,
    /// 1 on and below the diagonal.
    lower: Tensor<4>,
    /// The identity.
    eye: Tensor<4>,
    /// Per doubling level s = 1, 2, 4, … < l: 1 where row i is in the lower half and column j
    /// in the upper half of the same diagonal block of 2s (the block's off-diagonal quarter).
    quarters: Vec<Tensor<4>>,
}

impl DeltaMasks {
    fn new(l: usize, device: &Device) -> Self {
        let matrix = |keep: &dyn Fn(usize, usize) -> bool| -> Tensor<4> {
            let data: Vec<f32> = (0..l * l)
                .map(|n| f32::from(u8::from(keep(n / l, n % l))))
                .collect();
            Tensor::<2>::from_data(TensorData::new(data, [l, l]), device).unsqueeze::<4>()
        };
        let quarters = std::iter::successors(Some(1usize), |s| Some(s * 2))
            .take_while(|&s| s < l)
            .map(|s| {
                matrix(&|i, j| i / (2 * s) == j / (2 * s) && (i / s) % 2 == 1 && (j / s) % 2 == 0)
            })
            .collect();
        DeltaMasks {
            strict: matrix(&|i, j| j < i),
            lower: matrix(&|i, j| j <= i),
            eye: matrix(&|i, j| i == j),
            quarters,
        }
    }
}

/// `(I + L)⁻¹` for strictly lower-triangular `L`, by recursive doubling: `X` starts as the
/// inverse of the 1×1 diagonal blocks (I); at each level s the inverse of every diagonal block
/// of 2s, `[[A, 0], [B, D]]⁻¹ = [[A⁻¹, 0], [−D⁻¹BA⁻¹, D⁻¹]]`, gets its off-diagonal quarter from
/// `X (I + L) X` (X being block-diagonal, that product's quarter is `D⁻¹BA⁻¹`). ⌈log₂ l⌉
/// levels of two batched matrix products each.
///
/// # Shapes
/// - lower: `[B, H, l, l]`, zero on and above the diagonal
/// - output: `[B, H, l, l]`
fn unit_lower_inverse(lower: Tensor<4>, masks: &DeltaMasks) -> Tensor<4> {
    let m = lower + masks.eye.clone();
    let [b, h, l, _] = m.dims();
    let mut x = masks.eye.clone().expand([b, h, l, l]);
    for quarter in &masks.quarters {
        let off = x.clone().matmul(m.clone()).matmul(x.clone());
        x = x - off * quarter.clone();
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::max_abs_diff;
    use crate::host::to_vec;
    use crate::seeded::normal;

    const B: usize = 2;
    const H: usize = 2;
    const F: usize = 3;
    const DH: usize = 4;

    /// Positive features `[B, H, T, F]`: `exp(0.5·N(0,1))`.
    fn features(t: usize, seed: u64, device: &Device) -> Tensor<4> {
        normal([B, H, t, F], seed, device).mul_scalar(0.5).exp()
    }

    /// Features q, k (seeds `seed`, `seed + 1`) and values v (`seed + 2`, `[B, H, T, Dh]`).
    fn qkv(t: usize, seed: u64, device: &Device) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let (q, k) = (features(t, seed, device), features(t, seed + 1, device));
        (q, k, normal([B, H, t, DH], seed + 2, device))
    }

    /// Positions `r` of a `[B, H, T, _]` tensor.
    fn part<const N: usize>(x: &Tensor<N>, r: std::ops::Range<usize>) -> Tensor<N> {
        x.clone().slice_dim(2, r)
    }

    /// Row-major index of `[b, h, i, j]` in a `[B, H, n, m]` buffer.
    fn at(b: usize, h: usize, i: usize, j: usize, n: usize, m: usize) -> usize {
        ((b * H + h) * n + i) * m + j
    }

    /// The quadratic form on the host, in f64: `y_t = (φq_t S0 + Σ_{i≤t} (φq_t·φk_i) v_i) /
    /// (φq_t z0 + Σ_{i≤t} φq_t·φk_i + eps)`; and the final `S`, `z`.
    fn naive_sum(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        s0: &[f32],
        z0: &[f32],
        t: usize,
        eps: f64,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut y = vec![0.0f32; B * H * t * DH];
        let mut s = s0.to_vec();
        let mut z = z0.to_vec();
        for b in 0..B {
            for h in 0..H {
                for tq in 0..t {
                    let mut num = [0.0f64; DH];
                    let mut den = eps;
                    for j in 0..F {
                        let qj = q[at(b, h, tq, j, t, F)] as f64;
                        den += qj * z0[(b * H + h) * F + j] as f64;
                        for d in 0..DH {
                            num[d] += qj * s0[at(b, h, j, d, F, DH)] as f64;
                        }
                    }
                    for i in 0..=tq {
                        let a: f64 = (0..F)
                            .map(|j| {
                                q[at(b, h, tq, j, t, F)] as f64 * k[at(b, h, i, j, t, F)] as f64
                            })
                            .sum();
                        den += a;
                        for d in 0..DH {
                            num[d] += a * v[at(b, h, i, d, t, DH)] as f64;
                        }
                    }
                    for d in 0..DH {
                        y[at(b, h, tq, d, t, DH)] = (num[d] / den) as f32;
                    }
                }
                for i in 0..t {
                    for j in 0..F {
                        let kj = k[at(b, h, i, j, t, F)];
                        z[(b * H + h) * F + j] += kj;
                        for d in 0..DH {
                            s[at(b, h, j, d, F, DH)] += kj * v[at(b, h, i, d, t, DH)];
                        }
                    }
                }
            }
        }
        (y, s, z)
    }

    /// The chunked form equals the quadratic reference for T below, at and above the chunk,
    /// not a multiple of it, from zero and from a non-zero initial state; and the returned
    /// state is the initial one plus the sums.
    #[test]
    fn chunked_equals_quadratic_reference() {
        let device = mnemo_backend::test_device().inner();
        let chunk = 4;
        for (case, t) in [1usize, 3, 4, 7, 8, 13].into_iter().enumerate() {
            for with_state in [false, true] {
                let seed = 10 * case as u64;
                let (q, k, v) = qkv(t, seed, &device);
                let state = with_state.then(|| FastWeightState {
                    weights: normal([B, H, F, DH], seed + 3, &device),
                    normalizer: normal([B, H, F], seed + 4, &device).exp(),
                });
                let (s0, z0) = match &state {
                    Some(s) => (to_vec(s.weights.clone()), to_vec(s.normalizer.clone())),
                    None => (vec![0.0; B * H * F * DH], vec![0.0; B * H * F]),
                };
                let (want_y, want_s, want_z) = naive_sum(
                    &to_vec(q.clone()),
                    &to_vec(k.clone()),
                    &to_vec(v.clone()),
                    &s0,
                    &z0,
                    t,
                    1e-3,
                );
                let (y, got) = causal_linear_attend(q, k, v, state, chunk, 1e-3);
                assert_eq!(y.dims(), [B, H, t, DH]);
                let what = format!("T {t}, initial state {with_state}");
                assert!(max_abs_diff(&to_vec(y), &want_y) < 1e-4, "outputs, {what}");
                assert!(
                    max_abs_diff(&to_vec(got.weights), &want_s) < 1e-4,
                    "S, {what}"
                );
                assert!(
                    max_abs_diff(&to_vec(got.normalizer), &want_z) < 1e-4,
                    "z, {what}"
                );
            }
        }
    }

    /// Attending over 13 positions at once equals two segments (6 + 7) with the state carried,
    /// and the chunk size does not matter.
    #[test]
    fn carried_state_equals_one_long_segment() {
        let device = mnemo_backend::test_device().inner();
        let t = 13;
        let (q, k, v) = qkv(t, 1, &device);
        let (whole, whole_state) =
            causal_linear_attend(q.clone(), k.clone(), v.clone(), None, 4, 1e-6);
        let (first, state) = causal_linear_attend(
            part(&q, 0..6),
            part(&k, 0..6),
            part(&v, 0..6),
            None,
            4,
            1e-6,
        );
        let (second, end) = causal_linear_attend(
            part(&q, 6..t),
            part(&k, 6..t),
            part(&v, 6..t),
            Some(state),
            4,
            1e-6,
        );
        let joined = to_vec(Tensor::cat(vec![first, second], 2));
        let whole = to_vec(whole);
        assert!(max_abs_diff(&joined, &whole) < 1e-5);
        assert!(max_abs_diff(&to_vec(end.weights), &to_vec(whole_state.weights)) < 1e-4);
        assert!(max_abs_diff(&to_vec(end.normalizer), &to_vec(whole_state.normalizer)) < 1e-4);
        for chunk in [1, 5, 16] {
            let (y, _) = causal_linear_attend(q.clone(), k.clone(), v.clone(), None, chunk, 1e-6);
            assert!(max_abs_diff(&to_vec(y), &whole) < 1e-5, "chunk {chunk}");
        }
    }

    /// The delta rule equals a per-step host reference (sum-normalised φ, f64), from zero and
    /// from a non-zero initial W, for chunks of 1 (the recurrence), 2, 4 (a partial last
    /// chunk), 9 and 16 (one chunk), and two segments with W carried equal one.
    #[test]
    fn delta_rule_equals_per_step_reference() {
        let device = mnemo_backend::test_device().inner();
        let t = 9;
        let (q, k, v) = qkv(t, 5, &device);
        let beta = burn::tensor::activation::sigmoid(normal([B, H, t], 8, &device));
        for with_state in [false, true] {
            let w0 = with_state.then(|| normal([B, H, F, DH], 9, &device));
            let (want, w) = delta_reference(&q, &k, &v, &beta, w0.clone());
            for chunk in [1, 2, 4, 9, 16] {
                let (y, w_end) = delta_rule_attend(
                    q.clone(),
                    k.clone(),
                    v.clone(),
                    beta.clone(),
                    w0.clone(),
                    chunk,
                );
                let diff = max_abs_diff(&to_vec(y.clone()), &want);
                assert!(diff < 1e-5, "state {with_state}, chunk {chunk}: {diff}");
                let diff = max_abs_diff(&to_vec(w_end), &w);
                assert!(
                    diff < 1e-5,
                    "W_T, state {with_state}, chunk {chunk}: {diff}"
                );

                let (a, mid) = delta_rule_attend(
                    part(&q, 0..4),
                    part(&k, 0..4),
                    part(&v, 0..4),
                    part(&beta, 0..4),
                    w0.clone(),
                    chunk,
                );
                let (c, _) = delta_rule_attend(
                    part(&q, 4..t),
                    part(&k, 4..t),
                    part(&v, 4..t),
                    part(&beta, 4..t),
                    Some(mid),
                    chunk,
                );
                let joined = to_vec(Tensor::cat(vec![a, c], 2));
                assert!(
                    max_abs_diff(&joined, &to_vec(y)) < 1e-5,
                    "segments, state {with_state}, chunk {chunk}"
                );
            }
        }
    }

    /// Long chunks of nearly one-hot keys (the worst case for the triangular solve: k_i·k_j
    /// near 1, β near 1) still give the recurrence's outputs: 64 positions in one chunk.
    #[test]
    fn delta_rule_chunks_hold_with_peaked_keys() {
        let device = mnemo_backend::test_device().inner();
        let t = 64;
        let (q, _, v) = qkv(t, 11, &device);
        // exp(8·N(0,1)): one feature dominates each key.
        let k = normal([B, H, t, F], 12, &device).mul_scalar(8.0).exp();
        let beta =
            burn::tensor::activation::sigmoid(normal([B, H, t], 13, &device).add_scalar(3.0));
        let (want, w) = delta_reference(&q, &k, &v, &beta, None);
        for chunk in [8, 64] {
            let (y, w_end) =
                delta_rule_attend(q.clone(), k.clone(), v.clone(), beta.clone(), None, chunk);
            let diff = max_abs_diff(&to_vec(y), &want);
            assert!(diff < 1e-4, "chunk {chunk}: {diff}");
            let diff = max_abs_diff(&to_vec(w_end), &w);
            assert!(diff < 1e-4, "W_T, chunk {chunk}: {diff}");
        }
    }

    /// The delta rule position by position on the host in f64 (sum-normalised features):
    /// outputs `[B, H, T, Dh]` and `W_T` `[B, H, F, Dh]`, row-major.
    fn delta_reference(
        q: &Tensor<4>,
        k: &Tensor<4>,
        v: &Tensor<4>,
        beta: &Tensor<3>,
        w0: Option<Tensor<4>>,
    ) -> (Vec<f32>, Vec<f32>) {
        let t = q.dims()[2];
        let (qh, kh, vh, bh) = (
            to_vec(q.clone()),
            to_vec(k.clone()),
            to_vec(v.clone()),
            to_vec(beta.clone()),
        );
        let mut w: Vec<f64> = match w0 {
            Some(w) => to_vec(w).into_iter().map(f64::from).collect(),
            None => vec![0.0; B * H * F * DH],
        };
        let mut want = vec![0.0f32; B * H * t * DH];
        for b in 0..B {
            for h in 0..H {
                let norm = |x: &[f32], i: usize| -> Vec<f64> {
                    let row: Vec<f64> = (0..F).map(|j| x[at(b, h, i, j, t, F)] as f64).collect();
                    let s: f64 = row.iter().sum();
                    row.iter().map(|r| r / s).collect()
                };
                for i in 0..t {
                    let (kn, qn) = (norm(&kh, i), norm(&qh, i));
                    let beta = bh[(b * H + h) * t + i] as f64;
                    let recalled: Vec<f64> = (0..DH)
                        .map(|d| (0..F).map(|j| w[at(b, h, j, d, F, DH)] * kn[j]).sum())
                        .collect();
                    for j in 0..F {
                        for d in 0..DH {
                            let vd = vh[at(b, h, i, d, t, DH)] as f64;
                            w[at(b, h, j, d, F, DH)] += beta * kn[j] * (vd - recalled[d]);
                        }
                    }
                    for d in 0..DH {
                        want[at(b, h, i, d, t, DH)] = (0..F)
                            .map(|j| w[at(b, h, j, d, F, DH)] * qn[j])
                            .sum::<f64>()
                            as f32;
                    }
                }
            }
        }
        (want, w.iter().map(|&x| x as f32).collect())
    }
}
