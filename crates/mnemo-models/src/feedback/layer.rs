//! The pieces of one Feedback step: a layer that attends to the memory window (then its
//! feed-forward), and the key/value projection of memories.
//!
//! Size legend: B rows, S span, H heads, D d_model, Dh head size, n stored window slots.
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use mnemo_core::attention::scaled_linear;
use mnemo_core::heads::{merge_heads, split_heads};
use mnemo_core::{
    Activation, AdaptiveSpan, FeedForward, FeedForwardConfig, Norm, NormConfig, RelativePositions,
    RelativePositionsConfig, Residual, ResidualConfig,
};

use super::backward::StepProducts;
use super::backward::activation::gelu_on_host;
use super::backward::params::LinearParams;
use super::core::FeedbackCoreConfig;
use super::host_memory::HostRead;
use super::memory::WindowView;

impl FeedbackCoreConfig {
    /// Build one layer of the core. Pre-norm scales the attention output projection by
    /// `1/√(2L)` at init (official code).
    pub fn init_layer(&self, device: &Device) -> FeedbackLayer {
        let d = self.d_model;
        let inner = self.n_heads * self.d_head();
        let bias = self.options.bias;
        let out_init_scale = self.placement.out_init_scale(self.n_layers);
        let residual = ResidualConfig {
            d_model: d,
            norm: self.norm,
            placement: self.placement,
        };
        let mut output = scaled_linear(inner, d, out_init_scale, device);
        if !bias {
            output.bias = None;
        }
        FeedbackLayer {
            attn_residual: residual.init(device),
            query: LinearConfig::new(d, inner).with_bias(bias).init(device),
            output,
            positions: (!self.options.tie_positions).then(|| self.init_positions(device)),
            dropout: DropoutConfig::new(self.dropout).init(),
            ff_residual: residual.init(device),
            ff: FeedForwardConfig {
                d_model: d,
                d_ff: self.d_ff,
                dropout: self.dropout,
                activation: self.options.activation,
            }
            .init(device),
            adaptive_span: self.adaptive_span.map(|a| a.init(device)),
            n_heads: self.n_heads,
        }
    }

    /// A relative-position table: distances `1..=S`, `Dh` wide.
    pub fn init_positions(&self, device: &Device) -> RelativePositions {
        RelativePositionsConfig {
            span: self.span,
            d_head: self.d_head(),
            min_distance: 1,
        }
        .init(device)
    }

    /// Build one memory projection: `H·Dh` keys and values, with biases unless
    /// `options.bias` is false.
    pub fn init_projection(&self, device: &Device) -> MemoryProjection {
        let (d, inner, bias) = (
            self.d_model,
            self.n_heads * self.d_head(),
            self.options.bias,
        );
        MemoryProjection {
            norm: (!self.options.tie_norms).then(|| NormConfig::new(d, self.norm).init(device)),
            key: LinearConfig::new(d, inner).with_bias(bias).init(device),
            value: LinearConfig::new(d, inner).with_bias(bias).init(device),
            n_heads: self.n_heads,
        }
    }
}

/// One layer of a Feedback step: attention from the current state to the memory window, then
/// the feed-forward sublayer. Keys and values come from outside (the memory), not the layer.
#[derive(Module, Debug)]
pub struct FeedbackLayer {
    /// Norm and placement of the attention sublayer.
    pub attn_residual: Residual,
    /// Query projection.
    pub query: Linear,
    /// Attention output projection.
    pub output: Linear,
    /// Learned vector per distance 1..=S; `None` when the core's one table serves all layers
    /// (`tie_positions`; see [`FeedbackCore::positions_of`](super::FeedbackCore::positions_of)).
    pub positions: Option<RelativePositions>,
    /// Dropout on the attention output.
    pub dropout: Dropout,
    /// Norm and placement of the feed-forward sublayer.
    pub ff_residual: Residual,
    /// Feed-forward sublayer.
    pub ff: FeedForward,
    /// The learnt soft span over the S window slots (None: every slot, a fixed span).
    pub adaptive_span: Option<AdaptiveSpan>,
    /// Heads H.
    pub n_heads: usize,
}

impl FeedbackLayer {
    /// Position vectors of the whole window of this layer's own table, transposed and ready
    /// for `q · Pᵀ` (see [`window_positions`]).
    ///
    /// # Panics
    /// If the layer has no table of its own (`tie_positions`: use
    /// [`FeedbackCore::positions_of`](super::FeedbackCore::positions_of)).
    ///
    /// # Shapes
    /// - output: `[1, 1, Dh, S]`
    pub fn window_positions(&self) -> Tensor<4> {
        window_positions(
            self.positions
                .as_ref()
                .expect("positions: tied in the core (FeedbackCore::positions_of)"),
        )
    }

    /// The attention sublayer (residual and norm included): the first half of a layer. An
    /// encoder-decoder layer puts cross-attention between the halves (the core's hook).
    ///
    /// # Shapes
    /// - h: `[B, 1, D]`
    /// - window: the w memories before this step (w = S, or fewer when an adaptive span trims)
    /// - positions: `[1, 1, Dh, w]` from [`window_positions`](Self::window_positions)
    /// - span_mask: `[1, H, 1, w]` or `[1, 1, 1, w]`, the adaptive span's mask (if any)
    /// - output: `[B, 1, D]`
    pub fn attend_memory(
        &self,
        h: Tensor<3>,
        window: &WindowView,
        positions: Tensor<4>,
        span_mask: Option<&Tensor<4>>,
    ) -> Tensor<3> {
        let source = WindowRead::Tensors {
            window,
            positions: &positions,
            span_mask,
        };
        self.attend_memory_with(h, source, None)
    }

    /// [`attend_memory`](Self::attend_memory) over the window `source` names (the tensor
    /// buffers' views or the host windows), its products on the host kernels when `packed`
    /// holds the layer's weights.
    pub(crate) fn attend_memory_with(
        &self,
        h: Tensor<3>,
        source: WindowRead,
        packed: Option<&LayerLinears>,
    ) -> Tensor<3> {
        self.attn_residual.forward(h, |x| {
            let q = apply_linear(&self.query, packed.map(|p| &p.query), x);
            let o = match source {
                WindowRead::Host(read) => read.attend(q),
                WindowRead::Tensors {
                    window,
                    positions,
                    span_mask,
                } => {
                    let q = split_heads(q, self.n_heads);
                    merge_heads(attend_window(q, window, positions.clone(), span_mask)) // [B,1,H·Dh]
                }
            };
            let o = apply_linear(&self.output, packed.map(|p| &p.output), o);
            self.dropout.forward(o)
        })
    }

    /// The feed-forward sublayer (residual and norm included): the second half of a layer.
    ///
    /// # Shapes
    /// - h: `[B, T, D]`
    /// - output: `[B, T, D]`
    pub fn feed_forward(&self, h: Tensor<3>) -> Tensor<3> {
        self.feed_forward_with(h, None)
    }

    /// [`feed_forward`](Self::feed_forward), its products on the host kernels when `packed`
    /// holds the layer's weights.
    pub(crate) fn feed_forward_with(
        &self,
        h: Tensor<3>,
        packed: Option<&LayerLinears>,
    ) -> Tensor<3> {
        // On the host kernels, GELU too (burn's is a scalar erf per element).
        let activate = |x: Tensor<3>| match (packed, self.ff.activation) {
            (Some(_), Activation::Gelu) => gelu_on_host(x),
            (_, activation) => activation.forward(x),
        };
        self.ff_residual.forward(h, |x| {
            self.ff.forward_with(
                x,
                |x| activate(apply_linear(&self.ff.up, packed.map(|p| &p.up), x)),
                |x| apply_linear(&self.ff.down, packed.map(|p| &p.down), x),
            )
        })
    }
}

/// A layer's linear maps, their weights ready for one step's rows: what decoding on the host
/// kernels packs ([`HostLinears`](super::core::HostLinears)) and what the manual forward and
/// backward multiply by ([`LayerParams`](super::backward::params::LayerParams)).
#[derive(Debug)]
pub(crate) struct LayerLinears {
    pub(crate) query: LinearParams,
    pub(crate) output: LinearParams,
    pub(crate) up: LinearParams,
    pub(crate) down: LinearParams,
}

impl LayerLinears {
    /// `layer`'s weights, their step products by `products`.
    pub(crate) fn of(layer: &FeedbackLayer, products: StepProducts) -> Self {
        let products = Some(products);
        Self {
            query: LinearParams::of(&layer.query, products),
            output: LinearParams::of(&layer.output, products),
            up: LinearParams::of(&layer.ff.up, products),
            down: LinearParams::of(&layer.ff.down, products),
        }
    }
}

/// A memory projection's key and value maps, their weights ready for one step's rows (as
/// [`LayerLinears`]).
#[derive(Debug)]
pub(crate) struct ProjLinears {
    pub(crate) key: LinearParams,
    pub(crate) value: LinearParams,
}

impl ProjLinears {
    /// `projection`'s weights, their step products by `products`.
    pub(crate) fn of(projection: &MemoryProjection, products: StepProducts) -> Self {
        Self {
            key: LinearParams::of(&projection.key, Some(products)),
            value: LinearParams::of(&projection.value, Some(products)),
        }
    }
}

/// Where a layer's attention reads the memory window.
pub(crate) enum WindowRead<'a> {
    /// Views of the memory's tensor buffers, attended through burn's ops
    /// ([`attend_window`]).
    Tensors {
        window: &'a WindowView,
        /// `[1, 1, Dh, w]`
        positions: &'a Tensor<4>,
        /// `[1, H, 1, w]`, with an adaptive span.
        span_mask: Option<&'a Tensor<4>>,
    },
    /// The memory's host windows, attended by the CPU kernels.
    Host(HostRead<'a>),
}

/// `linear(x)`, multiplied by the host kernels when `packed` holds its weights (the same sums
/// in another rounding order).
///
/// # Shapes
/// - x: `[B, n, in]`
/// - output: `[B, n, out]`
pub(crate) fn apply_linear(
    linear: &Linear,
    packed: Option<&LinearParams>,
    x: Tensor<3>,
) -> Tensor<3> {
    let Some(packed) = packed else {
        return linear.forward(x);
    };
    let [b, n, d] = x.dims();
    let y = packed.step(x.reshape([b * n, d]));
    let out = y.dims()[1];
    y.reshape([b, n, out])
}

/// Position vectors of the whole window, transposed and ready for `q · Pᵀ`: slot `j` of the
/// window (oldest first) is at distance `S - j`. Compute once per segment.
///
/// # Shapes
/// - output: `[1, 1, Dh, S]`
pub fn window_positions(positions: &RelativePositions) -> Tensor<4> {
    let s = positions.span();
    positions.window(s).transpose().unsqueeze::<4>()
}

/// Attention of one step's queries over a memory window, the relative position term included.
///
/// Scores are `(q·k_j + q·p_{S-j}) / √Dh` over the S slots, softmax, then the weighted values.
/// Where the window's oldest slots are folded zero memories (see [`WindowView`]), their equal
/// key `k₀` and value `v₀` are scored once per slot (positions differ) and their weights summed
/// onto `v₀`: exactly the attention over the zero-padded window. With an adaptive span the
/// probabilities are multiplied by its mask and renormalised
/// ([`AdaptiveSpan::apply`](mnemo_core::AdaptiveSpan::apply)).
///
/// # Shapes
/// - q: `[B, H, 1, Dh]`
/// - positions: `[1, 1, Dh, S]`
/// - span_mask: `[1, H, 1, S]` or `[1, 1, 1, S]`
/// - output: `[B, H, 1, Dh]`
pub fn attend_window(
    q: Tensor<4>,
    window: &WindowView,
    positions: Tensor<4>,
    span_mask: Option<&Tensor<4>>,
) -> Tensor<4> {
    let [b, heads, _, dh] = q.dims();
    let scale = 1.0 / (dh as f64).sqrt();
    let pos = q.clone().matmul(positions); // [B,H,1,S]
    let n_zero = window.folded;
    let probabilities = |scores: Tensor<4>| {
        let a = softmax(scores.mul_scalar(scale), 3);
        match span_mask {
            Some(m) => mnemo_core::adaptive_span::apply_mask(a, m.clone()),
            None => a,
        }
    };
    if let (0, Some(k), Some(v)) = (n_zero, &window.keys, &window.values) {
        // Every slot stored (training segments, language-model decoding): no folded part.
        let scores = q.matmul(k.clone().swap_dims(2, 3)) + pos; // [B,H,1,S]
        return probabilities(scores).matmul(v.clone());
    }
    let n_stored = pos.dims()[3] - n_zero;
    let mut scores = Vec::with_capacity(2);
    if let Some((k0, _)) = window.zero.as_ref().filter(|_| n_zero > 0) {
        let s0 = (q.clone() * k0.clone().expand([b, heads, 1, dh])).sum_dim(3); // [B,H,1,1]
        scores.push(pos.clone().narrow(3, 0, n_zero) + s0);
    }
    if let Some(k) = &window.keys {
        scores.push(q.matmul(k.clone().swap_dims(2, 3)) + pos.narrow(3, n_zero, n_stored)); // [B,H,1,n]
    }
    let a = probabilities(Tensor::cat(scores, 3)); // [B,H,1,S]
    let zero_part = window.zero.as_ref().filter(|_| n_zero > 0).map(|(_, v0)| {
        let weight = a.clone().narrow(3, 0, n_zero).sum_dim(3); // [B,H,1,1]
        weight.expand([b, heads, 1, dh]) * v0.clone().expand([b, heads, 1, dh])
    });
    let stored_part = window
        .values
        .as_ref()
        .map(|v| a.narrow(3, n_zero, n_stored).matmul(v.clone()));
    match (zero_part, stored_part) {
        (Some(z), Some(r)) => z + r,
        (Some(z), None) => z,
        (None, Some(r)) => r,
        (None, None) => unreachable!("a window has S ≥ 1 slots"),
    }
}

/// The key/value projection of memories: `K = W_k norm(m)`, `V = W_v norm(m)`.
#[derive(Module, Debug)]
pub struct MemoryProjection {
    /// Norm applied to the memory before projecting; `None` with `tie_norms` (the memory is
    /// normalised by the reading layer's attention norm, or not at all under post-norm: see
    /// [`FeedbackCore::memory_norm`](super::FeedbackCore::memory_norm)).
    pub norm: Option<Norm>,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Heads H.
    pub n_heads: usize,
}

impl MemoryProjection {
    /// Keys and values of memories normalised by `norm` (none: as they are), split into heads.
    /// `norm` is the core's [`memory_norm`](super::FeedbackCore::memory_norm) of this
    /// projection.
    ///
    /// # Shapes
    /// - memories: `[B, N, D]`
    /// - output: `[B, H, N, Dh]` each
    pub fn forward(&self, norm: Option<&Norm>, memories: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        self.forward_with(norm, memories, None)
    }

    /// [`forward`](Self::forward), its products on the host kernels when `packed` holds the
    /// key and value weights.
    pub(crate) fn forward_with(
        &self,
        norm: Option<&Norm>,
        memories: Tensor<3>,
        packed: Option<&ProjLinears>,
    ) -> (Tensor<4>, Tensor<4>) {
        let m = match norm {
            Some(norm) => norm.forward(memories),
            None => memories,
        };
        let (key, value) = (packed.map(|p| &p.key), packed.map(|p| &p.value));
        (
            split_heads(apply_linear(&self.key, key, m.clone()), self.n_heads),
            split_heads(apply_linear(&self.value, value, m), self.n_heads),
        )
    }
}
