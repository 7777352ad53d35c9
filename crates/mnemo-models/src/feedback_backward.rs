//! A hand-written backward for a Feedback Transformer segment: exact gradients without autodiff.
//!
//! The forward runs step by step on the plain (non-autodiff) device, storing per step only what
//! the backward needs (layer inputs, queries, attention probabilities, attention outputs,
//! mid-layer states, FFN pre-activations, memories). The backward then runs through time in
//! reverse for the *activation* gradients only; every weight gradient is formed afterwards with
//! one large matmul over all `N = T·B` rows (the weights do not change within a segment, so
//! `Σ_t x_tᵀ dy_t = Xᵀ dY`). Norm statistics and GELU derivatives are computed in one batched
//! pass after the forward, not per step.
//!
//! Window gradients: step `t` reads window slots `t .. t+S` of the key/value buffer and writes
//! slot `S+t`. Going backward, the gradient of slot `S+t` is complete once steps `t+1 ..`
//! are done; each step adds its contribution to its S slots with one matmul over all layers
//! that share the window (`dK[t..t+S] += dSᵀ Q`, `dV[t..t+S] += Aᵀ dO`), in place.
//!
//! Equal to burn's autodiff of [`FeedbackLm::forward_segment`] up to float rounding
//! (tests/feedback_backward.rs checks every parameter group, shared and per-layer K/V, over
//! several carried segments). Supported: pre-norm (LayerNorm or RMSNorm), no dropout; see
//! [`FeedbackLm::supports_manual_backward`].
//!
//! Size legend: B batch, T segment length, S span, L layers, H heads, D d_model, Dh = D/H,
//! F FFN width, V vocabulary, N = T·B rows (time-major: row `t·B + b`), P projections.
use burn::module::ParamId;
use burn::nn::{LayerNormConfig, Linear};
use burn::optim::GradientsParams;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::layer_norm;
use burn::tensor::{Int, Tensor, TensorData};
use mnemo_core::Norm;
use mnemo_kernels::PackedMatrix;

use crate::feedback::{FeedbackLm, FeedbackState};
use crate::feedback_host_window::{HostAttention, HostWindows, host};

/// Logits, gradients of every parameter and the next state of one segment.
#[derive(Debug)]
pub struct SegmentGradients {
    /// Logits on the plain device. Shape `[B, T, V]`.
    pub logits: Tensor<3>,
    /// Gradient of the loss for every parameter, keyed by parameter id (plain device).
    pub grads: GradientsParams,
    /// The last S memories, detached, on the model's device.
    pub state: FeedbackState,
}

/// Which code computes the per-step products (one step's `B` rows times a weight matrix) of
/// [`FeedbackLm::forward_backward_segment`]. Both compute the same sums; they differ only in
/// float rounding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepProducts {
    /// burn's `matmul` on the model's device: works on every backend.
    #[default]
    Backend,
    /// `mnemo_kernels::PackedMatrix` products on host memory: 3–5× faster than the CPU backend's GEMM for
    /// `B = 8` rows (docs/performance.md). Each product reads the rows back from the device and
    /// writes the result to it, so use it only with a CPU backend (`mnemo_backend::runs_on_host`).
    Host,
}

/// A matrix `M` that step rows are multiplied by (`x · M`), held as the chosen
/// [`StepProducts`] path needs it.
enum StepMatrix {
    /// `Mᵀ`, contiguous `[n, k]`: the product is computed as `(Mᵀ xᵀ)ᵀ` so that the GEMM's long
    /// side is the feature dimension, not the batch of 8 rows.
    Backend(Tensor<2>),
    /// `M` on the host, packed for `mnemo_kernels`.
    Host(PackedMatrix),
}

impl StepMatrix {
    /// The matrix `M` given `Mᵀ` (shape `[n, k]`; contiguous for the backend path, whose GEMM
    /// would otherwise read it strided).
    fn from_transposed(m_t: Tensor<2>, products: StepProducts) -> Self {
        match products {
            StepProducts::Backend => StepMatrix::Backend(m_t),
            StepProducts::Host => {
                let [n, k] = m_t.dims();
                let m = m_t.transpose().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 weights");
                StepMatrix::Host(PackedMatrix::new(&m, k, n))
            }
        }
    }

    /// `x · M` for host rows `x` (`[rows, k]`), on `device`.
    fn apply_host(&self, x: Vec<f32>, rows: usize, device: &burn::tensor::Device) -> Tensor<2> {
        match self {
            StepMatrix::Host(m) => {
                let mut out = vec![0.0f32; rows * m.n()];
                m.matmul(&x, &mut out, rows);
                Tensor::from_data(TensorData::new(out, [rows, m.n()]), device)
            }
            StepMatrix::Backend(_) => {
                let k = x.len() / rows.max(1);
                self.apply(Tensor::from_data(TensorData::new(x, [rows, k]), device))
            }
        }
    }

    /// `x · M`.
    ///
    /// # Shapes
    /// - x: `[B, k]`
    /// - output: `[B, n]`
    fn apply(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            StepMatrix::Backend(m_t) => m_t.clone().matmul(x.transpose()).transpose(),
            StepMatrix::Host(_) => {
                let [rows, _] = x.dims();
                let device = x.device();
                self.apply_host(host(x), rows, &device)
            }
        }
    }
}

/// Values (plain device) and ids of a norm's parameters.
struct NormParams {
    layer: bool,
    gamma: Tensor<1>,
    beta: Option<Tensor<1>>,
    eps: f64,
    gamma_id: ParamId,
    beta_id: Option<ParamId>,
}

impl NormParams {
    fn of(norm: &Norm) -> Self {
        match norm {
            Norm::Layer(n) => Self {
                layer: true,
                gamma: n.gamma.val().inner(),
                beta: n.beta.as_ref().map(|b| b.val().inner()),
                // burn keeps LayerNorm's epsilon private; mnemo's norms use its default.
                eps: LayerNormConfig::new(1).epsilon,
                gamma_id: n.gamma.id,
                beta_id: n.beta.as_ref().map(|b| b.id),
            },
            Norm::Rms(n) => Self {
                layer: false,
                gamma: n.gamma.val().inner(),
                beta: None,
                eps: n.epsilon,
                gamma_id: n.gamma.id,
                beta_id: None,
            },
        }
    }

    /// # Shapes
    /// - x: `[..., D]`
    fn forward<const N: usize>(&self, x: Tensor<N>) -> Tensor<N> {
        if self.layer {
            layer_norm(x, self.gamma.clone(), self.beta.clone(), self.eps)
        } else {
            self.affine(self.stats(x).0)
        }
    }

    /// The normalised input `x̂` and `1/σ`.
    ///
    /// # Shapes
    /// - x: `[..., D]`
    /// - output: `[..., D]`, `[..., 1]`
    fn stats<const N: usize>(&self, x: Tensor<N>) -> (Tensor<N>, Tensor<N>) {
        let x = if self.layer { x.clone() - x.mean_dim(N - 1) } else { x };
        let rstd = (x.clone().square().mean_dim(N - 1) + self.eps).sqrt().recip();
        (x * rstd.clone(), rstd)
    }

    fn affine<const N: usize>(&self, xhat: Tensor<N>) -> Tensor<N> {
        let y = xhat * self.gamma.clone().unsqueeze::<N>();
        match &self.beta {
            Some(b) => y + b.clone().unsqueeze::<N>(),
            None => y,
        }
    }

    /// `dx` from `dx̂ = dy ⊙ γ`.
    ///
    /// # Shapes
    /// - dxhat, xhat: `[..., D]`; rstd: `[..., 1]`
    fn backward<const N: usize>(&self, dxhat: Tensor<N>, xhat: Tensor<N>, rstd: Tensor<N>) -> Tensor<N> {
        let proj = (dxhat.clone() * xhat.clone()).mean_dim(N - 1);
        let g = if self.layer {
            dxhat.clone() - dxhat.mean_dim(N - 1) - xhat * proj
        } else {
            dxhat - xhat * proj
        };
        g * rstd
    }

    /// `W` (`[D, out]`) with row `i` scaled by `γ_i`: the transposed, contiguous form of
    /// [`fold`](Self::fold)`(Wᵀ)`, for a [`StepMatrix`].
    fn fold_rows(&self, w: Tensor<2>) -> Tensor<2> {
        w * self.gamma.clone().unsqueeze_dim::<2>(1)
    }

    /// `W` scaled column-wise by γ: `dy · (Wᵀ ⊙ γ)` is `(dy · Wᵀ) ⊙ γ`.
    ///
    /// # Shapes
    /// - w_t: `[out, D]`
    fn fold(&self, w_t: Tensor<2>) -> Tensor<2> {
        w_t * self.gamma.clone().unsqueeze::<2>()
    }

    /// Register γ and β gradients from the output gradient `dy` (before γ) and `x̂`.
    ///
    /// # Shapes
    /// - dy, xhat: `[N, D]`
    fn register(&self, grads: &mut GradientsParams, dy: Tensor<2>, xhat: Tensor<2>) {
        let d = dy.dims()[1];
        grads.register(self.gamma_id, (dy.clone() * xhat).sum_dim(0).reshape([d]));
        if let Some(id) = self.beta_id {
            grads.register(id, dy.sum_dim(0).reshape([d]));
        }
    }
}

/// Values (plain device) and ids of a linear layer.
struct LinearParams {
    w: Tensor<2>,
    /// `W` for one step's rows (`None` for a layer applied only to all rows at once).
    step: Option<StepMatrix>,
    b: Option<Tensor<1>>,
    w_id: ParamId,
    b_id: Option<ParamId>,
}

impl LinearParams {
    /// `products`: how [`step`](Self::step) multiplies, `None` if it is never called.
    fn of(linear: &Linear, products: Option<StepProducts>) -> Self {
        let w = linear.weight.val().inner();
        // `Wᵀ` as a contiguous copy (the transposed view is strided).
        let w_t = || Tensor::from_data(w.clone().transpose().into_data(), &w.device());
        Self {
            step: products.map(|p| StepMatrix::from_transposed(w_t(), p)),
            w,
            b: linear.bias.as_ref().map(|b| b.val().inner()),
            w_id: linear.weight.id,
            b_id: linear.bias.as_ref().map(|b| b.id),
        }
    }

    /// # Shapes
    /// - x: `[..., in]`
    fn forward<const N: usize>(&self, x: Tensor<N>) -> Tensor<N> {
        let y = x.matmul(self.w.clone().unsqueeze::<N>());
        match &self.b {
            Some(b) => y + b.clone().unsqueeze::<N>(),
            None => y,
        }
    }

    /// One step's rows through the layer.
    ///
    /// # Shapes
    /// - x: `[B, in]`
    /// - output: `[B, out]`
    fn step(&self, x: Tensor<2>) -> Tensor<2> {
        let y = self.step.as_ref().expect("a step matrix").apply(x);
        match &self.b {
            Some(b) => y + b.clone().unsqueeze::<2>(),
            None => y,
        }
    }

    /// `Wᵀ`, shape `[out, in]`.
    fn w_t(&self) -> Tensor<2> {
        self.w.clone().transpose()
    }

    /// Register `dW = xᵀ dy` and `db = Σ dy`.
    ///
    /// # Shapes
    /// - x: `[N, in]`, dy: `[N, out]`
    fn register(&self, grads: &mut GradientsParams, x: Tensor<2>, dy: Tensor<2>) {
        let out = dy.dims()[1];
        if let Some(id) = self.b_id {
            grads.register(id, dy.clone().sum_dim(0).reshape([out]));
        }
        grads.register(self.w_id, x.transpose().matmul(dy));
    }
}

/// One layer's parameters, with the transposed (and γ-folded) weights the backward multiplies by.
struct LayerParams {
    norm1: NormParams,
    query: LinearParams,
    output: LinearParams,
    norm2: NormParams,
    up: LinearParams,
    down: LinearParams,
    /// Position vectors of the window, slot `j` at distance `S - j`. Shape `[1, 1, S, Dh]`.
    pos: Tensor<4>,
    /// `posᵀ`. Shape `[1, 1, Dh, S]`.
    pos_t: Tensor<4>,
    table_id: ParamId,
    /// Which memory projection (and window) the layer reads.
    proj: usize,
}

/// A memory projection's parameters.
struct ProjParams {
    norm: NormParams,
    key: LinearParams,
    value: LinearParams,
}

/// Per-layer values stored by the forward, one entry per step.
#[derive(Default)]
struct LayerTape {
    /// Layer input `[B, D]`.
    x: Vec<Tensor<2>>,
    /// Query (unscaled) `[B, D]`.
    q: Vec<Tensor<2>>,
    /// Attention probabilities `[B, H, 1, S]` (backend windows).
    a: Vec<Tensor<4>>,
    /// Query and probabilities on the host (host windows).
    host: Vec<HostAttention>,
    /// Attention output before the output projection `[B, D]`.
    o: Vec<Tensor<2>>,
    /// State after the attention sublayer `[B, D]`.
    mid: Vec<Tensor<2>>,
    /// FFN pre-activation `[B, F]`.
    f1: Vec<Tensor<2>>,
}

/// Per-layer gradients stored by the backward, one entry per step (reversed order).
#[derive(Default)]
struct LayerGrads {
    /// Gradient of the layer output (= of the FFN output) `[B, D]`.
    dy: Vec<Tensor<2>>,
    /// Gradient of the FFN pre-activation `[B, F]`.
    df1: Vec<Tensor<2>>,
    /// Gradient of the mid state (= of the attention output projection's output) `[B, D]`.
    dmid: Vec<Tensor<2>>,
    /// Gradient of the query `[B, D]`.
    dq: Vec<Tensor<2>>,
    /// Gradient of the (scaled) scores `[B, H, 1, S]`.
    ds: Vec<Tensor<4>>,
}

/// Stack per-step `[B, X]` tensors (in time order) into `[T·B, X]` rows.
fn rows(steps: Vec<Tensor<2>>) -> Tensor<2> {
    let [b, x] = steps[0].dims();
    let t = steps.len();
    Tensor::stack::<3>(steps, 0).reshape([t * b, x])
}

impl FeedbackLm {
    /// Whether [`forward_backward_segment`](Self::forward_backward_segment) computes exactly what
    /// autodiff of [`forward_segment`](Self::forward_segment) would: pre-norm and no dropout.
    pub fn supports_manual_backward(&self) -> bool {
        self.final_norm.is_some()
            && self.dropout.prob == 0.0
            && self
                .layers
                .iter()
                .all(|l| l.pre_norm && l.dropout.prob == 0.0 && l.ff.dropout.prob == 0.0)
    }

    /// Forward a segment and back-propagate `dL/dlogits` by hand (see the [module docs](self)).
    ///
    /// `loss_grad` receives the logits and returns the gradient of the loss with respect to
    /// them. Returns the logits, the gradient of every parameter (registered under the ids of
    /// `self`'s parameters, on the plain device) and the next state, as `forward_segment` does.
    ///
    /// # Panics
    /// If [`supports_manual_backward`](Self::supports_manual_backward) is false.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - state.memories: `[B, S, D]`
    /// - loss_grad: `[B, T, V] -> [B, T, V]`
    pub fn forward_backward_segment(
        &self,
        tokens: Tensor<2, Int>,
        state: FeedbackState,
        products: StepProducts,
        loss_grad: impl FnOnce(Tensor<3>) -> Tensor<3>,
    ) -> SegmentGradients {
        self.manual_segment(tokens, state, products, Some(loss_grad))
    }

    /// [`forward_segment`](Self::forward_segment) for inference, through the manual forward
    /// where it applies: with [`StepProducts::Host`] on a plain (non-autodiff) device and a
    /// model that [supports](Self::supports_manual_backward) it, the per-step products and
    /// window attention run on the host kernels; otherwise this is `forward_segment`. Equal
    /// up to float rounding order.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - state.memories: `[B, S, D]`
    /// - output: logits `[B, T, V]`
    pub fn forward_segment_with(
        &self,
        tokens: Tensor<2, Int>,
        state: FeedbackState,
        products: StepProducts,
    ) -> (Tensor<3>, FeedbackState) {
        let plain = !self.head.weight.val().is_autodiff();
        if products == StepProducts::Host && plain && self.supports_manual_backward() {
            let out = self.manual_segment(tokens, state, products, None::<fn(Tensor<3>) -> Tensor<3>>);
            return (out.logits, out.state);
        }
        self.forward_segment(tokens, state)
    }

    /// The manual forward and, given `loss_grad`, the backward (without it, `grads` is empty).
    fn manual_segment(
        &self,
        tokens: Tensor<2, Int>,
        state: FeedbackState,
        products: StepProducts,
        loss_grad: Option<impl FnOnce(Tensor<3>) -> Tensor<3>>,
    ) -> SegmentGradients {
        assert!(
            self.supports_manual_backward(),
            "the manual Feedback backward needs pre-norm and no dropout"
        );
        let autodiff = self.head.weight.val().is_autodiff();
        let [b, t_len] = tokens.dims();
        let s = self.span;
        let n_layers = self.layers.len();
        let heads = self.layers[0].n_heads;
        let d = self.head.weight.dims()[0];
        let dh = d / heads;
        let scale = 1.0 / (dh as f64).sqrt();
        let tokens = tokens.inner();
        let device = tokens.device();

        // ---- parameters (plain device) ----
        let layers: Vec<LayerParams> = self
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let window = layer.positions.window(s).inner(); // [S,Dh]
                LayerParams {
                    norm1: NormParams::of(&layer.attn_norm),
                    query: LinearParams::of(&layer.query, Some(products)),
                    output: LinearParams::of(&layer.output, Some(products)),
                    norm2: NormParams::of(&layer.ff_norm),
                    up: LinearParams::of(&layer.ff.up, Some(products)),
                    down: LinearParams::of(&layer.ff.down, Some(products)),
                    pos_t: window.clone().transpose().unsqueeze::<4>(),
                    pos: window.unsqueeze::<4>(),
                    table_id: layer.positions.table.id,
                    proj: if self.memory_projections.len() == 1 { 0 } else { l },
                }
            })
            .collect();
        let projs: Vec<ProjParams> = self
            .memory_projections
            .iter()
            .map(|p| ProjParams {
                norm: NormParams::of(&p.norm),
                key: LinearParams::of(&p.key, Some(products)),
                value: LinearParams::of(&p.value, Some(products)),
            })
            .collect();
        let final_norm = NormParams::of(self.final_norm.as_ref().expect("pre-norm"));
        let head = LinearParams::of(&self.head, None);
        let mix: Vec<f32> = softmax(self.mix.val().inner(), 0)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 mixing weights");

        // ---- forward, step by step ----
        let emb = self.embedding.weight.val().inner();
        let ids_tm = tokens.clone().swap_dims(0, 1).reshape([t_len * b]); // [N], row t·B+b
        let x0_all = emb.clone().select(0, ids_tm.clone()).reshape([t_len, b, d]); // [T,B,D]
        let carried = state.memories.inner(); // [B,S,D]
        let mut kbufs = Vec::with_capacity(projs.len());
        let mut vbufs = Vec::with_capacity(projs.len());
        for p in &projs {
            let n = p.norm.forward(carried.clone());
            let split = |x: Tensor<3>| x.reshape([b, s, heads, dh]).swap_dims(1, 2); // [B,H,S,Dh]
            let pad = Tensor::<4>::zeros([b, heads, t_len, dh], &device);
            kbufs.push(Tensor::cat(vec![split(p.key.forward(n.clone())), pad.clone()], 2));
            vbufs.push(Tensor::cat(vec![split(p.value.forward(n)), pad], 2)); // [B,H,S+T,Dh]
        }
        let mut host_windows = (products == StepProducts::Host).then(|| {
            let pos = layers.iter().map(|lp| lp.pos.clone().reshape([s, dh])).collect();
            HostWindows::new(&kbufs, &vbufs, pos, scale as f32)
        });
        let mut tapes: Vec<LayerTape> = (0..n_layers).map(|_| LayerTape::default()).collect();
        let mut tops = Vec::with_capacity(t_len);
        let mut memories = Vec::with_capacity(t_len);
        for t in 0..t_len {
            let x0 = x0_all.clone().narrow(0, t, 1).reshape([b, d]);
            let mut memory = x0.clone().mul_scalar(mix[0]);
            let mut h = x0;
            for (l, (lp, tape)) in layers.iter().zip(tapes.iter_mut()).enumerate() {
                let q = lp.query.step(lp.norm1.forward(h.clone())); // [B,D]
                let o = match &host_windows {
                    Some(hw) => {
                        let (o, saved) = hw.attend(lp.proj, l, t, q.clone());
                        tape.host.push(saved);
                        o
                    }
                    None => {
                        let k_win = kbufs[lp.proj].clone().slice_dim(2, t..t + s); // [B,H,S,Dh]
                        let v_win = vbufs[lp.proj].clone().slice_dim(2, t..t + s);
                        let q4 = q.clone().reshape([b, heads, 1, dh]);
                        let scores = (q4.clone().matmul(k_win.swap_dims(2, 3)) + q4.matmul(lp.pos_t.clone()))
                            .mul_scalar(scale); // [B,H,1,S]
                        let a = softmax(scores, 3);
                        let o = a.clone().matmul(v_win).reshape([b, d]); // [B,D]
                        tape.a.push(a);
                        o
                    }
                };
                let mid = h.clone() + lp.output.step(o.clone());
                let f1 = lp.up.step(lp.norm2.forward(mid.clone())); // [B,F]
                let out = mid.clone() + lp.down.step(gelu(f1.clone()));
                tape.x.push(h);
                tape.q.push(q);
                tape.o.push(o);
                tape.mid.push(mid);
                tape.f1.push(f1);
                memory = memory + out.clone().mul_scalar(mix[l + 1]);
                h = out;
            }
            let slot = [0..b, 0..heads, s + t..s + t + 1, 0..dh];
            for (p, proj) in projs.iter().enumerate() {
                let n = proj.norm.forward(memory.clone());
                let (k, v) = (proj.key.step(n.clone()), proj.value.step(n));
                if let Some(hw) = &mut host_windows {
                    hw.write(p, t, k, v);
                    continue;
                }
                let (k, v) = (k.reshape([b, heads, 1, dh]), v.reshape([b, heads, 1, dh]));
                kbufs[p].inplace(|buf| buf.slice_assign(slot.clone(), k));
                vbufs[p].inplace(|buf| buf.slice_assign(slot.clone(), v));
            }
            tops.push(h);
            memories.push(memory);
        }
        let n_rows = t_len * b;
        let top_all = rows(tops); // [N,D]
        let (top_hat, top_rstd) = final_norm.stats(top_all.clone());
        let top_normed = final_norm.affine(top_hat.clone());
        let logits_tm = head.forward(top_normed.clone()); // [N,V]
        let v_size = logits_tm.dims()[1];
        let logits = logits_tm.reshape([t_len, b, v_size]).swap_dims(0, 1); // [B,T,V]

        // ---- next state ----
        let m_all = rows(memories); // [N,D]
        let m_bt = m_all.clone().reshape([t_len, b, d]).swap_dims(0, 1); // [B,T,D]
        let next = Tensor::cat(vec![carried.clone(), m_bt.clone()], 1).narrow(1, t_len, s); // [B,S,D]
        let next = if autodiff { next.autodiff() } else { next };
        let Some(loss_grad) = loss_grad else {
            let state = FeedbackState { memories: next, projected: None };
            return SegmentGradients { logits, grads: GradientsParams::new(), state };
        };
        let dlogits = loss_grad(logits.clone()).inner().swap_dims(0, 1).reshape([n_rows, v_size]);

        // ---- batched quantities for the backward ----
        let mut grads = GradientsParams::new();
        head.register(&mut grads, top_normed, dlogits.clone());
        let dtop_normed = dlogits.matmul(head.w_t()); // [N,D]
        final_norm.register(&mut grads, dtop_normed.clone(), top_hat.clone());
        let dtop = final_norm
            .backward(final_norm.fold(dtop_normed), top_hat, top_rstd)
            .reshape([t_len, b, d]);
        let m_stats: Vec<(Tensor<3>, Tensor<3>)> = projs
            .iter()
            .map(|p| {
                let (xh, r) = p.norm.stats(m_all.clone());
                (xh.reshape([t_len, b, d]), r.reshape([t_len, b, 1]))
            })
            .collect();
        struct Batched {
            x_hat: Tensor<3>,
            x_rstd: Tensor<3>,
            mid_hat: Tensor<3>,
            mid_rstd: Tensor<3>,
            gelu_grad: Tensor<3>,
            q_w_t: StepMatrix,
            o_w_t: StepMatrix,
            up_w_t: StepMatrix,
            down_w_t: StepMatrix,
        }
        let inv_sqrt_2pi = 1.0 / (2.0 * std::f32::consts::PI).sqrt();
        let batched: Vec<Batched> = layers
            .iter()
            .zip(&tapes)
            .map(|(lp, tape)| {
                let (x_hat, x_rstd) = lp.norm1.stats(Tensor::stack::<3>(tape.x.clone(), 0));
                let (mid_hat, mid_rstd) = lp.norm2.stats(Tensor::stack::<3>(tape.mid.clone(), 0));
                let f1 = Tensor::stack::<3>(tape.f1.clone(), 0); // [T,B,F]
                // gelu'(x) = Φ(x) + x φ(x)
                let cdf = (f1.clone().mul_scalar(std::f32::consts::FRAC_1_SQRT_2).erf() + 1.0).mul_scalar(0.5);
                let pdf = f1.clone().square().mul_scalar(-0.5).exp().mul_scalar(inv_sqrt_2pi);
                Batched {
                    x_hat,
                    x_rstd,
                    mid_hat,
                    mid_rstd,
                    gelu_grad: cdf + f1 * pdf,
                    q_w_t: StepMatrix::from_transposed(lp.norm1.fold_rows(lp.query.w.clone()), products),
                    o_w_t: StepMatrix::from_transposed(lp.output.w.clone(), products),
                    up_w_t: StepMatrix::from_transposed(lp.norm2.fold_rows(lp.up.w.clone()), products),
                    down_w_t: StepMatrix::from_transposed(lp.down.w.clone(), products),
                }
            })
            .collect();
        let proj_w_t: Vec<(StepMatrix, StepMatrix)> = projs
            .iter()
            .map(|p| {
                (
                    StepMatrix::from_transposed(p.norm.fold_rows(p.key.w.clone()), products),
                    StepMatrix::from_transposed(p.norm.fold_rows(p.value.w.clone()), products),
                )
            })
            .collect();

        // ---- backward through time (activation gradients only) ----
        // Backend windows' gradients (host windows keep theirs until `into_grads`).
        let zeros = |bufs: &[Tensor<4>]| match host_windows {
            Some(_) => Vec::new(),
            None => bufs.iter().map(Tensor::zeros_like).collect(),
        };
        let (mut dkbufs, mut dvbufs) = (zeros(&kbufs), zeros(&vbufs));
        let mut lgrads: Vec<LayerGrads> = (0..n_layers).map(|_| LayerGrads::default()).collect();
        let mut dms = Vec::with_capacity(t_len);
        let mut dx0s = Vec::with_capacity(t_len);
        let step_of = |x: &Tensor<3>, t: usize| {
            let [_, rows, width] = x.dims();
            x.clone().narrow(0, t, 1).reshape([rows, width])
        };
        for t in (0..t_len).rev() {
            // Gradient of this step's memory, from everything that read its key and value.
            let mut dm: Option<Tensor<2>> = None;
            for (p, proj) in projs.iter().enumerate() {
                let dxhat = match &host_windows {
                    Some(hw) => {
                        let (dk, dv) = hw.slot_grads(p, t);
                        proj_w_t[p].0.apply_host(dk, b, &device) + proj_w_t[p].1.apply_host(dv, b, &device)
                    }
                    None => {
                        let slot = |buf: &Tensor<4>| buf.clone().slice_dim(2, s + t..s + t + 1).reshape([b, d]);
                        proj_w_t[p].0.apply(slot(&dkbufs[p])) + proj_w_t[p].1.apply(slot(&dvbufs[p]))
                    }
                };
                let g = proj.norm.backward(dxhat, step_of(&m_stats[p].0, t), step_of(&m_stats[p].1, t));
                dm = Some(match dm {
                    Some(acc) => acc + g,
                    None => g,
                });
            }
            let dm = dm.expect("at least one projection");
            let mut dstate = step_of(&dtop, t) + dm.clone().mul_scalar(mix[n_layers]);
            let mut ds_step: Vec<Vec<Tensor<4>>> = vec![Vec::new(); projs.len()];
            let mut q_step: Vec<Vec<Tensor<4>>> = vec![Vec::new(); projs.len()];
            let mut a_step: Vec<Vec<Tensor<4>>> = vec![Vec::new(); projs.len()];
            let mut do_step: Vec<Vec<Tensor<4>>> = vec![Vec::new(); projs.len()];
            for l in (0..n_layers).rev() {
                let (lp, bt, tape, lg) = (&layers[l], &batched[l], &tapes[l], &mut lgrads[l]);
                let dy = dstate;
                let df1 = bt.down_w_t.apply(dy.clone()) * step_of(&bt.gelu_grad, t); // [B,F]
                let dmid = dy.clone()
                    + lp.norm2.backward(
                        bt.up_w_t.apply(df1.clone()),
                        step_of(&bt.mid_hat, t),
                        step_of(&bt.mid_rstd, t),
                    );
                let d_o = bt.o_w_t.apply(dmid.clone());
                let (dq, ds) = match &mut host_windows {
                    Some(hw) => hw.backward(lp.proj, l, t, &tape.host[t], d_o),
                    None => {
                        let d_o = d_o.reshape([b, heads, 1, dh]);
                        let k_win = kbufs[lp.proj].clone().slice_dim(2, t..t + s); // [B,H,S,Dh]
                        let v_win = vbufs[lp.proj].clone().slice_dim(2, t..t + s);
                        let a = tape.a[t].clone(); // [B,H,1,S]
                        let da = d_o.clone().matmul(v_win.swap_dims(2, 3)); // [B,H,1,S]
                        let ds = (a.clone() * (da.clone() - (da * a.clone()).sum_dim(3))).mul_scalar(scale);
                        let dq = (ds.clone().matmul(k_win) + ds.clone().matmul(lp.pos.clone())).reshape([b, d]);
                        ds_step[lp.proj].push(ds.clone());
                        q_step[lp.proj].push(tape.q[t].clone().reshape([b, heads, 1, dh]));
                        a_step[lp.proj].push(a);
                        do_step[lp.proj].push(d_o);
                        (dq, ds)
                    }
                };
                let dx = dmid.clone()
                    + lp.norm1.backward(
                        bt.q_w_t.apply(dq.clone()),
                        step_of(&bt.x_hat, t),
                        step_of(&bt.x_rstd, t),
                    );
                lg.dy.push(dy);
                lg.df1.push(df1);
                lg.dmid.push(dmid);
                lg.dq.push(dq);
                lg.ds.push(ds);
                dstate = dx + dm.clone().mul_scalar(mix[l]);
            }
            // Window gradients of the S slots this step read, one matmul per window (host
            // windows: one in-place pass per window every few steps).
            if let Some(hw) = &mut host_windows {
                hw.end_step(t);
            }
            let window = [0..b, 0..heads, t..t + s, 0..dh];
            for p in (0..projs.len()).filter(|_| host_windows.is_none()) {
                let ds = Tensor::cat(std::mem::take(&mut ds_step[p]), 2); // [B,H,Lp,S]
                let q = Tensor::cat(std::mem::take(&mut q_step[p]), 2); // [B,H,Lp,Dh]
                let dk = ds.swap_dims(2, 3).matmul(q); // [B,H,S,Dh]
                let a = Tensor::cat(std::mem::take(&mut a_step[p]), 2);
                let d_o = Tensor::cat(std::mem::take(&mut do_step[p]), 2);
                let dv = a.swap_dims(2, 3).matmul(d_o);
                let old = dkbufs[p].clone().slice(window.clone());
                dkbufs[p].inplace(|buf| buf.slice_assign(window.clone(), old + dk));
                let old = dvbufs[p].clone().slice(window.clone());
                dvbufs[p].inplace(|buf| buf.slice_assign(window.clone(), old + dv));
            }
            dms.push(dm);
            dx0s.push(dstate);
        }

        if let Some(hw) = host_windows {
            (dkbufs, dvbufs) = hw.into_grads(&device);
        }

        // ---- weight gradients: one matmul per weight over all N rows ----
        let time_order = |mut v: Vec<Tensor<2>>| {
            v.reverse();
            rows(v)
        };
        let dm_all = time_order(dms);
        let dx0_all = time_order(dx0s);
        // Mixing logits: dL/dw_l = Σ dm ⊙ h^l, through the softmax.
        let mut level_grads = Vec::with_capacity(n_layers + 1);
        level_grads.push((dm_all.clone() * x0_all.reshape([n_rows, d])).sum().into_scalar::<f64>());
        for l in 0..n_layers {
            let h = match l + 1 < n_layers {
                true => rows(tapes[l + 1].x.clone()),
                false => top_all.clone(),
            };
            level_grads.push((dm_all.clone() * h).sum().into_scalar::<f64>());
        }
        let mean: f64 = mix.iter().zip(&level_grads).map(|(w, g)| *w as f64 * g).sum();
        let dmix: Vec<f32> = mix.iter().zip(&level_grads).map(|(w, g)| (*w as f64 * (g - mean)) as f32).collect();
        grads.register(self.mix.id, Tensor::<1>::from_data(TensorData::new(dmix, [n_layers + 1]), &device));
        // Embedding: scatter-add of the step inputs' gradients, as a one-hot matmul.
        let v_emb = emb.dims()[0];
        let ids: Vec<i64> = ids_tm.into_data().convert::<i64>().try_to_vec::<i64>().expect("int ids");
        let mut onehot = vec![0.0f32; n_rows * v_emb];
        for (r, &id) in ids.iter().enumerate() {
            onehot[r * v_emb + id as usize] = 1.0;
        }
        let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [n_rows, v_emb]), &device);
        grads.register(self.embedding.weight.id, onehot.transpose().matmul(dx0_all));
        for ((lp, tape), (bt, lg)) in layers.iter().zip(tapes).zip(batched.into_iter().zip(lgrads)) {
            let dq = time_order(lg.dq);
            let x_hat = bt.x_hat.reshape([n_rows, d]);
            lp.query.register(&mut grads, lp.norm1.affine(x_hat.clone()), dq.clone());
            lp.norm1.register(&mut grads, dq.clone().matmul(lp.query.w_t()), x_hat);
            let mut ds = lg.ds;
            ds.reverse();
            let ds = Tensor::cat(ds, 0).reshape([n_rows * heads, s]); // [N·H,S]
            let q = rows(tape.q).reshape([n_rows * heads, dh]);
            let dwindow = ds.transpose().matmul(q); // [S,Dh], slot j = distance S-j
            grads.register(lp.table_id, dwindow.flip([0]));
            let dmid = time_order(lg.dmid);
            lp.output.register(&mut grads, rows(tape.o), dmid);
            let df1 = time_order(lg.df1);
            let mid_hat = bt.mid_hat.reshape([n_rows, d]);
            lp.up.register(&mut grads, lp.norm2.affine(mid_hat.clone()), df1.clone());
            lp.norm2.register(&mut grads, df1.matmul(lp.up.w_t()), mid_hat);
            let f1 = rows(tape.f1);
            lp.down.register(&mut grads, gelu(f1), time_order(lg.dy));
        }
        // Every slot's key/value came from the current projection weights: the carried
        // memories' slots too (their memories are detached, the projection is not).
        let all_memories = Tensor::cat(vec![carried, m_bt], 1).reshape([b * (s + t_len), d]); // [B·(S+T),D]
        for (proj, (dkbuf, dvbuf)) in projs.iter().zip(dkbufs.into_iter().zip(dvbufs)) {
            let merge = |buf: Tensor<4>| buf.swap_dims(1, 2).reshape([b * (s + t_len), d]);
            let (dk, dv) = (merge(dkbuf), merge(dvbuf));
            let (m_hat, _) = proj.norm.stats(all_memories.clone());
            let n = proj.norm.affine(m_hat.clone());
            proj.key.register(&mut grads, n.clone(), dk.clone());
            proj.value.register(&mut grads, n, dv.clone());
            let dn = dk.matmul(proj.key.w_t()) + dv.matmul(proj.value.w_t());
            proj.norm.register(&mut grads, dn, m_hat);
        }
        SegmentGradients {
            logits,
            grads,
            state: FeedbackState { memories: next, projected: None },
        }
    }
}
