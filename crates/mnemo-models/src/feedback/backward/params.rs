//! The parameters the manual backward reads: each module's weights on the plain device with
//! their ids, and the (transposed, γ-folded) matrices one step's rows are multiplied by.
//!
//! Size legend as in [`super`]: B rows, D d_model, S span, Dh head size, N = T·B rows.
use burn::module::ParamId;
use burn::nn::{LayerNormConfig, Linear};
use burn::optim::GradientsParams;
use burn::tensor::module::layer_norm;
use burn::tensor::{Device, Tensor, TensorData};
use mnemo_core::{Activation, Norm};
use mnemo_kernels::PackedMatrix;

use super::StepProducts;
use super::dropout::keep_prob;
use super::host_window::host;
use crate::feedback::FeedbackCore;
use crate::feedback::host_norm::HostNorm;
use crate::feedback::layer::{LayerLinears, ProjLinears};
use crate::host_product::matmul;
use mnemo_backend::with_slice;

/// A matrix `M` that step rows are multiplied by (`x · M`), held as the chosen
/// [`StepProducts`] path needs it. Public so that `mnemo bench` times the per-step product
/// exactly as the manual forward and backward run it.
// Built once per weight per segment: the size of the burn tensor handle does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum StepMatrix {
    /// `Mᵀ`, contiguous `[n, k]`: the product is computed as `(Mᵀ xᵀ)ᵀ` so that the GEMM's long
    /// side is the feature dimension, not the batch of 8 rows.
    Backend(Tensor<2>),
    /// `M` on the host, packed for `mnemo_kernels`.
    Host(PackedMatrix),
}

impl StepMatrix {
    /// The matrix `M` given `Mᵀ` (shape `[n, k]`; contiguous for the backend path, whose GEMM
    /// would otherwise read it strided).
    pub fn from_transposed(m_t: Tensor<2>, products: StepProducts) -> Self {
        match products {
            StepProducts::Backend => StepMatrix::Backend(m_t),
            StepProducts::Host => {
                let [n, k] = m_t.dims();
                StepMatrix::Host(with_slice(m_t, |m_t| {
                    PackedMatrix::from_transposed(m_t, k, n)
                }))
            }
        }
    }

    /// The matrix `M` itself (shape `[k, n]`): packed as it is for the host kernels; the
    /// backend path keeps a contiguous copy of `Mᵀ` (see [`Backend`](Self::Backend)).
    pub(crate) fn of(m: Tensor<2>, products: StepProducts) -> Self {
        match products {
            StepProducts::Backend => {
                let m_t = Tensor::from_data(m.clone().transpose().into_data(), &m.device());
                StepMatrix::Backend(m_t)
            }
            StepProducts::Host => {
                let [k, n] = m.dims();
                StepMatrix::Host(with_slice(m, |m| PackedMatrix::new(m, k, n)))
            }
        }
    }

    /// `x · M` for host rows `x` (`[rows, k]`), on `device`.
    ///
    /// # Shapes
    /// - x: `[rows, k]` row-major
    /// - output: `[rows, n]`
    pub fn apply_host(&self, x: Vec<f32>, rows: usize, device: &Device) -> Tensor<2> {
        match self {
            StepMatrix::Host(m) => host_rows_times(m, &x, rows, device),
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
    pub(crate) fn apply(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            StepMatrix::Backend(m_t) => m_t.clone().matmul(x.transpose()).transpose(),
            StepMatrix::Host(m) => {
                let [rows, _] = x.dims();
                let device = x.device();
                with_slice(x, |x| host_rows_times(m, x, rows, &device))
            }
        }
    }
}

/// `x · M` on the host kernels, as a tensor on `device`.
///
/// # Shapes
/// - x: `[rows, k]` row-major; output `[rows, n]`
fn host_rows_times(m: &PackedMatrix, x: &[f32], rows: usize, device: &Device) -> Tensor<2> {
    let mut out = vec![0.0f32; rows * m.n()];
    m.matmul(x, &mut out, rows);
    Tensor::from_data(TensorData::new(out, [rows, m.n()]), device)
}

/// Values (plain device) and ids of a norm's parameters.
pub(crate) struct NormParams {
    pub(crate) layer: bool,
    pub(crate) gamma: Tensor<1>,
    pub(crate) beta: Option<Tensor<1>>,
    pub(crate) eps: f64,
    pub(crate) gamma_id: ParamId,
    pub(crate) beta_id: Option<ParamId>,
    /// The host copy that one step's rows go through with host products
    /// ([`for_steps`](Self::for_steps); None: burn's operations).
    host: Option<HostNorm>,
}

impl NormParams {
    pub(crate) fn of(norm: &Norm) -> Self {
        match norm {
            Norm::Layer(n) => Self {
                layer: true,
                gamma: n.gamma.val().inner(),
                beta: n.beta.as_ref().map(|b| b.val().inner()),
                // burn keeps LayerNorm's epsilon private; mnemo's norms use its default.
                eps: LayerNormConfig::new(1).epsilon,
                gamma_id: n.gamma.id,
                beta_id: n.beta.as_ref().map(|b| b.id),
                host: None,
            },
            Norm::Rms(n) => Self {
                layer: false,
                gamma: n.gamma.val().inner(),
                beta: None,
                eps: n.epsilon,
                gamma_id: n.gamma.id,
                beta_id: None,
                host: None,
            },
        }
    }

    /// These parameters, with one step's rows ([`step`](Self::step),
    /// [`step_stats`](Self::step_stats), [`step_backward`](Self::step_backward)) on the CPU
    /// kernels when `products` are the host's.
    pub(crate) fn for_steps(mut self, products: StepProducts) -> Self {
        self.host = (products == StepProducts::Host).then(|| HostNorm::of_params(&self));
        self
    }

    /// One step's rows through the norm ([`forward`](Self::forward)).
    ///
    /// # Shapes
    /// - x, output: `[B, D]`
    pub(crate) fn step(&self, x: Tensor<2>) -> Tensor<2> {
        match &self.host {
            Some(h) => h.forward_tensor(x),
            None => self.forward(x),
        }
    }

    /// [`stats`](Self::stats) of one step's rows.
    ///
    /// # Shapes
    /// - x, x̂: `[B, D]`; `1/σ`: `[B, 1]`
    pub(crate) fn step_stats(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        match &self.host {
            Some(h) => h.stats_tensor(x),
            None => self.stats(x),
        }
    }

    /// [`backward`](Self::backward) of one step's rows.
    ///
    /// # Shapes
    /// - dxhat, xhat, output: `[B, D]`; rstd: `[B, 1]`
    pub(crate) fn step_backward(
        &self,
        dxhat: Tensor<2>,
        xhat: Tensor<2>,
        rstd: Tensor<2>,
    ) -> Tensor<2> {
        match &self.host {
            Some(h) => h.backward_tensor(dxhat, xhat, rstd),
            None => self.backward(dxhat, xhat, rstd),
        }
    }

    /// The parameters' ids: γ, then β (LayerNorm).
    pub(crate) fn ids(&self) -> Vec<ParamId> {
        std::iter::once(self.gamma_id).chain(self.beta_id).collect()
    }

    /// # Shapes
    /// - x: `[..., D]`
    pub(crate) fn forward<const N: usize>(&self, x: Tensor<N>) -> Tensor<N> {
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
    pub(crate) fn stats<const N: usize>(&self, x: Tensor<N>) -> (Tensor<N>, Tensor<N>) {
        let x = if self.layer {
            x.clone() - x.mean_dim(N - 1)
        } else {
            x
        };
        let rstd = (x.clone().square().mean_dim(N - 1) + self.eps)
            .sqrt()
            .recip();
        (x * rstd.clone(), rstd)
    }

    pub(crate) fn affine<const N: usize>(&self, xhat: Tensor<N>) -> Tensor<N> {
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
    pub(crate) fn backward<const N: usize>(
        &self,
        dxhat: Tensor<N>,
        xhat: Tensor<N>,
        rstd: Tensor<N>,
    ) -> Tensor<N> {
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
    pub(crate) fn fold_rows(&self, w: Tensor<2>) -> Tensor<2> {
        w * self.gamma.clone().unsqueeze_dim::<2>(1)
    }

    /// `W` scaled column-wise by γ: `dy · (Wᵀ ⊙ γ)` is `(dy · Wᵀ) ⊙ γ`.
    ///
    /// # Shapes
    /// - w_t: `[out, D]`
    pub(crate) fn fold(&self, w_t: Tensor<2>) -> Tensor<2> {
        w_t * self.gamma.clone().unsqueeze::<2>()
    }

    /// Register γ and β gradients from the output gradient `dy` (before γ) and `x̂`, added to
    /// what is registered already: a norm shared by a layer's attention and its memory
    /// projection (`tie_norms`) gets the sum of both.
    ///
    /// # Shapes
    /// - dy, xhat: `[N, D]`
    pub(crate) fn register(&self, grads: &mut GradientsParams, dy: Tensor<2>, xhat: Tensor<2>) {
        let d = dy.dims()[1];
        register_sum(
            grads,
            self.gamma_id,
            (dy.clone() * xhat).sum_dim(0).reshape([d]),
        );
        if let Some(id) = self.beta_id {
            register_sum(grads, id, dy.sum_dim(0).reshape([d]));
        }
    }

    /// Register the gradients of the linear maps that read this norm's output
    /// (`linearᵢ(norm(x))`, e.g. a memory projection's key and value) and of the norm's own γ
    /// and β, from the normalised rows `x̂` and each product's output gradient `dyᵢ`, with
    /// one GEMM per map: `Gᵢ = x̂ᵀ dyᵢ` gives `dWᵢ = γ ⊙ Gᵢ + β ⊗ Σ dyᵢ`, and the norm's
    /// `dγ = Σᵢ Σ_out Wᵢ ⊙ Gᵢ`, `dβ = Σᵢ Wᵢ Σ dyᵢ`: the input gradient `dyᵢ · Wᵢᵀ` over all
    /// rows is never formed (the backward through time already used it step by step).
    ///
    /// # Shapes
    /// - x_hat: `[N, D]`; each dy: `[N, outᵢ]`
    pub(crate) fn register_read_by(
        &self,
        grads: &mut GradientsParams,
        x_hat: Tensor<2>,
        reads: Vec<(&LinearParams, Tensor<2>)>,
    ) {
        let d = x_hat.dims()[1];
        let (mut dgamma, mut dbeta) = (None, None);
        for (linear, dy) in reads {
            let out = dy.dims()[1];
            let g = matmul(x_hat.clone().transpose(), dy.clone()); // [D,out]
            let db = dy.sum_dim(0); // [1,out]
            if let Some(id) = linear.b_id {
                grads.register(id, db.clone().reshape([out]));
            }
            let gamma = self.gamma.clone().unsqueeze_dim::<2>(1); // [D,1]
            let dw = match &self.beta {
                Some(beta) => g.clone() * gamma + beta.clone().unsqueeze_dim::<2>(1) * db.clone(),
                None => g.clone() * gamma,
            };
            grads.register(linear.w_id, dw);
            let add = |sum: Option<Tensor<2>>, x: Tensor<2>| Some(sum.map_or(x.clone(), |s| s + x));
            dgamma = add(dgamma, (linear.w.clone() * g).sum_dim(1)); // [D,1]
            if self.beta_id.is_some() {
                dbeta = add(dbeta, (linear.w.clone() * db).sum_dim(1));
            }
        }
        if let Some(dgamma) = dgamma {
            register_sum(grads, self.gamma_id, dgamma.reshape([d]));
        }
        if let (Some(id), Some(dbeta)) = (self.beta_id, dbeta) {
            register_sum(grads, id, dbeta.reshape([d]));
        }
    }
}

/// Values (plain device) and ids of a linear layer.
#[derive(Debug)]
pub(crate) struct LinearParams {
    pub(crate) w: Tensor<2>,
    /// `W` for one step's rows (`None` for a layer applied only to all rows at once).
    pub(crate) step: Option<StepMatrix>,
    pub(crate) b: Option<Tensor<1>>,
    pub(crate) w_id: ParamId,
    pub(crate) b_id: Option<ParamId>,
}

impl LinearParams {
    /// `products`: how [`step`](Self::step) multiplies, `None` if it is never called.
    pub(crate) fn of(linear: &Linear, products: Option<StepProducts>) -> Self {
        let w = linear.weight.val().inner();
        Self {
            step: products.map(|p| StepMatrix::of(w.clone(), p)),
            w,
            b: linear.bias.as_ref().map(|b| b.val().inner()),
            w_id: linear.weight.id,
            b_id: linear.bias.as_ref().map(|b| b.id),
        }
    }

    /// # Shapes
    /// - x: `[..., in]`
    pub(crate) fn forward<const N: usize>(&self, x: Tensor<N>) -> Tensor<N> {
        let dims = x.dims();
        let (k, n) = (dims[N - 1], self.w.dims()[1]);
        let rows = x.shape().num_elements() / k.max(1);
        let mut out = dims;
        out[N - 1] = n;
        let y = matmul(x.reshape([rows, k]), self.w.clone()).reshape(out);
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
    pub(crate) fn step(&self, x: Tensor<2>) -> Tensor<2> {
        let y = self.step.as_ref().expect("a step matrix").apply(x);
        match &self.b {
            Some(b) => y + b.clone().unsqueeze::<2>(),
            None => y,
        }
    }

    /// `Wᵀ`, shape `[out, in]`.
    pub(crate) fn w_t(&self) -> Tensor<2> {
        self.w.clone().transpose()
    }

    /// The gradient of the input rows from that of the output rows: `dy · Wᵀ`.
    ///
    /// # Shapes
    /// - dy: `[N, out]`
    /// - output: `[N, in]`
    pub(crate) fn input_grad(&self, dy: Tensor<2>) -> Tensor<2> {
        matmul(dy, self.w_t())
    }

    /// Register `dW = xᵀ dy` and `db = Σ dy`.
    ///
    /// # Shapes
    /// - x: `[N, in]`, dy: `[N, out]`
    pub(crate) fn register(&self, grads: &mut GradientsParams, x: Tensor<2>, dy: Tensor<2>) {
        let out = dy.dims()[1];
        if let Some(id) = self.b_id {
            grads.register(id, dy.clone().sum_dim(0).reshape([out]));
        }
        grads.register(self.w_id, matmul(x.transpose(), dy));
    }
}

/// One layer's parameters, with the transposed (and γ-folded) weights the backward multiplies by.
pub(crate) struct LayerParams {
    pub(crate) norm1: NormParams,
    pub(crate) norm2: NormParams,
    /// Query, output, FFN up and down.
    pub(crate) linear: LayerLinears,
    /// Position vectors of the w slots the layer reads, slot `j` at distance `w - j`. Shape
    /// `[1, 1, w, Dh]`.
    pub(crate) pos: Tensor<4>,
    /// `posᵀ`. Shape `[1, 1, Dh, w]`.
    pub(crate) pos_t: Tensor<4>,
    pub(crate) table_id: ParamId,
    /// Which memory projection (and window) the layer reads.
    pub(crate) proj: usize,
    /// How many of the window's S slots the layer reads, the newest: w = S, or fewer when its
    /// adaptive span trims.
    pub(crate) width: usize,
    /// The layer's adaptive span (None without one).
    pub(crate) span: Option<SpanParams>,
    /// Keep probabilities of the dropout on the attention output and on the feed-forward
    /// hidden activations (None: no dropout; see [`super::dropout`]).
    pub(crate) attn_keep: Option<f64>,
    pub(crate) ff_keep: Option<f64>,
}

/// An adaptive span's mask over a layer's w slots and its derivative (plain device).
pub(crate) struct SpanParams {
    /// The mask. Shape `[1, H', 1, w]` (H' = H, or 1 with one span per layer).
    pub(crate) mask: Tensor<4>,
    /// `∂mask/∂z` per ratio ([`AdaptiveSpan::mask_slope`]). Shape `[H', w]`.
    ///
    /// [`AdaptiveSpan::mask_slope`]: mnemo_core::AdaptiveSpan::mask_slope
    pub(crate) slope: Tensor<2>,
    pub(crate) ratio_id: ParamId,
}

impl SpanParams {
    /// The span of `layer` over the newest `width` of its S slots.
    fn of(span: &mnemo_core::AdaptiveSpan, s: usize, width: usize) -> Self {
        let mask = span.mask(s).inner().narrow(1, s - width, width); // [H',w]
        let heads = mask.dims()[0];
        Self {
            mask: mask.reshape([1, heads, 1, width]),
            slope: span.mask_slope(s).inner().narrow(1, s - width, width),
            ratio_id: span.ratio.id,
        }
    }
}

/// A memory projection's parameters.
pub(crate) struct ProjParams {
    pub(crate) norm: NormParams,
    /// Key and value.
    pub(crate) linear: ProjLinears,
}

/// Every parameter of a [`FeedbackCore`] the manual forward and backward use.
pub(crate) struct CoreParams {
    pub(crate) layers: Vec<LayerParams>,
    pub(crate) projs: Vec<ProjParams>,
    /// `softmax(w)` as numbers.
    pub(crate) mix: Vec<f32>,
    /// The feed-forward activation.
    pub(crate) activation: Activation,
    /// Head size Dh (queries, keys and values are `H·Dh` wide).
    pub(crate) d_head: usize,
    /// Per projection, the newest window slots its layers read
    /// ([`FeedbackCore::reach`]): the widest of their `width`s.
    pub(crate) reach: Vec<usize>,
}

impl CoreParams {
    /// `core`'s parameters; its dropouts act when `autodiff` (the model's parameters are on an
    /// autodiff device, i.e. training).
    pub(crate) fn of(core: &FeedbackCore, autodiff: bool) -> Self {
        let s = core.span;
        let layers = core
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let positions = core.positions_of(l);
                let span = layer.adaptive_span.as_ref();
                let width = core.layer_width(l);
                let window = positions.window(s).inner().narrow(0, s - width, width); // [w,Dh]
                LayerParams {
                    norm1: NormParams::of(&layer.attn_residual.norm).for_steps(core.products),
                    norm2: NormParams::of(&layer.ff_residual.norm).for_steps(core.products),
                    linear: LayerLinears::of(layer, core.products),
                    pos_t: window.clone().transpose().unsqueeze::<4>(),
                    pos: window.unsqueeze::<4>(),
                    table_id: positions.table.id,
                    proj: core.projection_of(l),
                    width,
                    span: span.map(|a| SpanParams::of(a, s, width)),
                    attn_keep: keep_prob(&layer.dropout, autodiff),
                    ff_keep: keep_prob(&layer.ff.dropout, autodiff),
                }
            })
            .collect();
        let projs = core
            .memory_projections
            .iter()
            .enumerate()
            .map(|(i, p)| ProjParams {
                // Pre-norm (the manual backward's): a memory norm always exists.
                norm: NormParams::of(core.memory_norm(i).expect("pre-norm memory norm"))
                    .for_steps(core.products),
                linear: ProjLinears::of(p, core.products),
            })
            .collect();
        let mix = host(core.mix_weights().inner());
        Self {
            layers,
            projs,
            mix,
            activation: core.options.activation,
            d_head: core.positions_of(0).table.dims()[1],
            reach: (0..core.memory_projections.len())
                .map(|p| core.reach(p))
                .collect(),
        }
    }
}

/// Register `grad` for `id`, added to the gradient already registered for it (a parameter
/// shared by several layers or sublayers gets the sum of their contributions).
pub(crate) fn register_sum<const D: usize>(
    grads: &mut GradientsParams,
    id: ParamId,
    grad: Tensor<D>,
) {
    let sum = match grads.remove::<D>(id) {
        Some(earlier) => earlier + grad,
        None => grad,
    };
    grads.register(id, sum);
}
