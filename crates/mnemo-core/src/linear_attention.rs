//! Linear (kernelized) causal self-attention with the `elu + 1` feature map, with the sum update
//! (Katharopoulos, Vyas, Pappas & Fleuret 2020, "Transformers are RNNs") or the delta update
//! (Schlag, Irie & Schmidhuber 2021, "Linear Transformers Are Secretly Fast Weight
//! Programmers").
//!
//! ```text
//! q_t, k_t, v_t = W_q x_t, W_k x_t, W_v x_t        (per head, Dh = D / H)
//! φ(x) = elu(x) + 1                                 (positive, F = Dh)
//! Sum:   y_t = φ(q_t)ᵀ S_t / (φ(q_t)ᵀ z_t + ε),  S_t = Σ_{i≤t} φ(k_i) v_iᵀ,  z_t = Σ_{i≤t} φ(k_i)
//! Delta: β_t = σ(W_β x_t) ∈ (0,1)^H,  W_t = W_{t-1} + β_t φ̂(k_t)(v_t − W_{t-1}ᵀφ̂(k_t))ᵀ,
//!        y_t = W_tᵀ φ̂(q_t),  φ̂ = φ / Σφ
//! out_t = W_o [y_t over heads]
//! ```
//!
//! The state (S, z) or W has a fixed size, so step-by-step decoding costs O(1) per position.
//! There are no position terms: the causal prefix sum orders the positions, and a kernelized
//! score `φ(q)ᵀφ(k)` has no place for a relative term `q·p_{t-i}` (it would have to factor
//! through the features). Computation is in [`fast_weights`](crate::fast_weights).
use burn::module::Module;
use burn::nn::{Dropout, Linear, LinearConfig};
use burn::tensor::activation::{elu, sigmoid};
use burn::tensor::{Device, Tensor};

use crate::carried_state::CarriedState;
use crate::fast_weights::{DEFAULT_EPS, FastWeightState, causal_linear_attend, delta_rule_attend};
use crate::heads::{merge_heads, split_heads};
use crate::projections::{at_least_one, check_shared, checked_projections};

/// How the fast weights are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastWeightUpdate {
    /// Add `φ(k) vᵀ` (Katharopoulos et al. 2020); outputs normalised by `φ(q)ᵀz`.
    Sum,
    /// The delta rule with a learned write strength β per head (Schlag et al. 2021).
    Delta,
}

/// Configuration of a [`LinearAttention`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearAttentionConfig {
    /// Model width D.
    pub d_model: usize,
    /// Number of heads H (D must be divisible by H).
    pub n_heads: usize,
    /// Dropout on the attention output.
    pub dropout: f64,
    /// Multiplier on the output projection's initial weights (1/sqrt(2L) for pre-norm stacks).
    pub out_init_scale: f64,
    /// Sum or delta update.
    pub update: FastWeightUpdate,
    /// Chunk length C of the parallel sum update and of the delta rule's triangular solves (cost
    /// O(T·C)).
    pub chunk: usize,
}

impl LinearAttentionConfig {
    /// Width D, H heads and the update, without dropout, default output init, chunks of 64.
    pub fn new(d_model: usize, n_heads: usize, update: FastWeightUpdate) -> Self {
        Self {
            d_model,
            n_heads,
            dropout: 0.0,
            out_init_scale: 1.0,
            update,
            chunk: 64,
        }
    }

    /// Whether the config can be built; the message starts with the offending field.
    pub fn validate(&self) -> Result<(), String> {
        check_shared(self.shared())?;
        at_least_one("chunk", self.chunk)
    }

    /// Build the module (burn's default init for q/k/v and β, the output projection scaled by
    /// `out_init_scale`).
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> LinearAttention {
        let p = checked_projections(self.validate(), self.shared(), device);
        LinearAttention {
            query: p.query,
            key: p.key,
            value: p.value,
            output: p.output,
            beta: (self.update == FastWeightUpdate::Delta)
                .then(|| LinearConfig::new(self.d_model, self.n_heads).init(device)),
            dropout: p.dropout,
            n_heads: p.n_heads,
            update: self.update,
            chunk: self.chunk,
        }
    }
}

/// The carried state of a [`LinearAttention`] layer.
// Tensors are handles (a few hundred bytes each); one state per layer, boxing gains nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum LinearState {
    /// Fast weights and normaliser of the sum update.
    Sum(FastWeightState),
    /// Fast weights W of the delta update. Shape `[B, H, Dh, Dh]`.
    Delta(Tensor<4>),
}

impl LinearState {
    /// The same state cut from the autodiff graph.
    pub fn detach(self) -> Self {
        match self {
            Self::Sum(s) => Self::Sum(s.detach()),
            Self::Delta(w) => Self::Delta(w.detach()),
        }
    }
}

/// Causal linear self-attention (see the module doc).
#[derive(Module, Debug)]
pub struct LinearAttention {
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Output projection.
    pub output: Linear,
    /// Write-strength projection `D -> H` (delta update only): `β = σ(W_β x)`.
    pub beta: Option<Linear>,
    /// Dropout on the output.
    pub dropout: Dropout,
    /// Number of heads H.
    pub n_heads: usize,
    /// Sum or delta update.
    #[module(skip)]
    pub update: FastWeightUpdate,
    /// Chunk length of the sum update's prefix sums and the delta rule's solves.
    #[module(skip)]
    pub chunk: usize,
}

/// The `elu + 1` feature map (positive).
fn feature_map(x: Tensor<4>) -> Tensor<4> {
    elu(x, 1.0).add_scalar(1.0)
}

impl CarriedState for LinearAttention {
    type State = LinearState;

    fn detach(state: LinearState) -> LinearState {
        state.detach()
    }

    /// See [`CarriedState::forward_with_state`].
    ///
    /// # Panics
    /// If `state` is of the other update's kind.
    fn forward_with_state(
        &self,
        x: Tensor<3>,
        state: Option<LinearState>,
    ) -> (Tensor<3>, LinearState) {
        let h = self.n_heads;
        let q = feature_map(split_heads(self.query.forward(x.clone()), h)); // [B,H,T,Dh]
        let k = feature_map(split_heads(self.key.forward(x.clone()), h));
        let v = split_heads(self.value.forward(x.clone()), h);
        let (a, state) = match (self.update, state) {
            (FastWeightUpdate::Sum, None) => {
                let (a, s) = causal_linear_attend(q, k, v, None, self.chunk, DEFAULT_EPS);
                (a, LinearState::Sum(s))
            }
            (FastWeightUpdate::Sum, Some(LinearState::Sum(s))) => {
                let (a, s) = causal_linear_attend(q, k, v, Some(s), self.chunk, DEFAULT_EPS);
                (a, LinearState::Sum(s))
            }
            (FastWeightUpdate::Delta, state) => {
                let w = match state {
                    None => None,
                    Some(LinearState::Delta(w)) => Some(w),
                    Some(LinearState::Sum(_)) => panic!("state: a sum state for a delta layer"),
                };
                let beta = self.beta.as_ref().expect("beta: the delta update needs it");
                let beta = sigmoid(beta.forward(x)).swap_dims(1, 2); // [B,H,T]
                let (a, w) = delta_rule_attend(q, k, v, beta, w, self.chunk);
                (a, LinearState::Delta(w))
            }
            (FastWeightUpdate::Sum, Some(LinearState::Delta(_))) => {
                panic!("state: a delta state for a sum layer")
            }
        };
        let y = self.dropout.forward(self.output.forward(merge_heads(a)));
        (y, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carried_state::checks::{causal_at, steps_and_segments_equal_forward};
    use crate::host::to_vec;
    use crate::seeded::{normal, reinit};
    use burn::module::Param;
    use burn::tensor::TensorData;

    const D: usize = 8;
    const HEADS: usize = 2;

    fn layer(update: FastWeightUpdate, chunk: usize, device: &Device) -> LinearAttention {
        let config = LinearAttentionConfig {
            chunk,
            ..LinearAttentionConfig::new(D, HEADS, update)
        };
        reinit(config.init(device), 3)
    }

    /// For the sum (several chunks) and the delta update: token by token with the state
    /// carried equals the parallel pass, and so do two segments; perturbing x at position 4
    /// (mid-chunk) leaves the outputs before it unchanged and changes every output from it on.
    #[test]
    fn step_and_segments_equal_forward_and_causal() {
        let device = mnemo_backend::test_device().inner();
        let x = normal([2, 7, D], 1, &device);
        let one_row = normal([1, 7, D], 2, &device);
        for update in [FastWeightUpdate::Sum, FastWeightUpdate::Delta] {
            let m = layer(update, 3, &device);
            let what = format!("{update:?}");
            steps_and_segments_equal_forward(&m, x.clone(), 4, &what);
            causal_at(&m, one_row.clone(), 4, 4, &what);
        }
    }

    /// `Σ y ⊙ r` for a delta layer.
    fn loss(m: &LinearAttention, x: &Tensor<3>, r: &Tensor<3>) -> Tensor<1> {
        (m.forward(x.clone()) * r.clone()).sum()
    }

    /// `p` with entry `i` moved by `delta`.
    fn nudged(p: &Param<Tensor<2>>, i: usize, delta: f32) -> Param<Tensor<2>> {
        let mut values = to_vec(p.val());
        values[i] += delta;
        let t = Tensor::from_data(TensorData::new(values, p.val().dims()), &p.val().device());
        Param::from_tensor(t)
    }

    /// Autodiff gradients of the β projection and the key projection of a delta layer equal
    /// central finite differences.
    #[test]
    fn delta_gradients_match_finite_differences() {
        let device = mnemo_backend::test_device();
        let m = layer(FastWeightUpdate::Delta, 3, &device);
        let x = normal([1, 5, D], 5, &device);
        let r = normal([1, 5, D], 6, &device);
        let grads = loss(&m, &x, &r).backward();
        let beta_w = &m.beta.as_ref().unwrap().weight;
        let cases: [(&str, &Param<Tensor<2>>, Tensor<2>); 2] = [
            ("beta", beta_w, beta_w.val().grad(&grads).unwrap()),
            (
                "key",
                &m.key.weight,
                m.key.weight.val().grad(&grads).unwrap(),
            ),
        ];
        let eps = 1e-2f32;
        for (name, param, grad) in cases {
            let grad = to_vec(grad);
            let scale = grad.iter().fold(0.0f32, |a, g| a.max(g.abs()));
            assert!(scale > 1e-3, "{name}: gradient is zero");
            for i in (0..grad.len()).step_by(if name == "key" { 5 } else { 1 }) {
                let at = |delta: f32| {
                    let mut m2 = m.clone();
                    match name {
                        "beta" => m2.beta.as_mut().unwrap().weight = nudged(param, i, delta),
                        _ => m2.key.weight = nudged(param, i, delta),
                    }
                    loss(&m2, &x, &r).into_scalar::<f64>()
                };
                let fd = ((at(eps) - at(-eps)) / (2.0 * eps as f64)) as f32;
                let tol = 0.03 * fd.abs() + 0.01 * scale;
                assert!(
                    (grad[i] - fd).abs() <= tol,
                    "{name}[{i}]: autodiff {} vs finite difference {fd}",
                    grad[i]
                );
            }
        }
    }

    #[test]
    fn validate_names_the_field() {
        let bad = LinearAttentionConfig::new(10, 3, FastWeightUpdate::Sum);
        assert!(bad.validate().unwrap_err().starts_with("n_heads"));
        let bad = LinearAttentionConfig {
            chunk: 0,
            ..LinearAttentionConfig::new(8, 2, FastWeightUpdate::Sum)
        };
        assert!(bad.validate().unwrap_err().starts_with("chunk"));
        assert!(
            LinearAttentionConfig::new(8, 2, FastWeightUpdate::Delta)
                .validate()
                .is_ok()
        );
    }
}
