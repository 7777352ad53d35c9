//! The pieces of a Feedback Transformer step: a layer that attends to the memory window, and
//! the key/value projection of memories.
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use mnemo_core::attention::scaled_linear;
use mnemo_core::heads::{merge_heads, split_heads};
use mnemo_core::{
    FeedForward, FeedForwardConfig, Norm, NormConfig, NormKind, RelativePositions,
    RelativePositionsConfig, attend,
};

/// Sizes a [`FeedbackLayer`] is built with.
#[derive(Debug, Clone, Copy)]
pub struct FeedbackLayerConfig {
    /// Model width D.
    pub d_model: usize,
    /// Heads H.
    pub n_heads: usize,
    /// Feed-forward width.
    pub d_ff: usize,
    /// Memory span S.
    pub span: usize,
    /// Dropout.
    pub dropout: f64,
    /// Norm kind.
    pub norm: NormKind,
    /// Pre-norm (true) or post-norm.
    pub pre_norm: bool,
    /// Multiplier on the attention output projection's initial weights.
    pub out_init_scale: f64,
}

impl FeedbackLayerConfig {
    /// Build the layer.
    pub fn init(&self, device: &Device) -> FeedbackLayer {
        let d = self.d_model;
        FeedbackLayer {
            attn_norm: NormConfig::new(d, self.norm).init(device),
            query: LinearConfig::new(d, d).init(device),
            output: scaled_linear(d, d, self.out_init_scale, device),
            positions: RelativePositionsConfig {
                span: self.span,
                d_head: d / self.n_heads,
                min_distance: 1,
            }
            .init(device),
            ff_norm: NormConfig::new(d, self.norm).init(device),
            ff: FeedForwardConfig { d_model: d, d_ff: self.d_ff, dropout: self.dropout }.init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_heads: self.n_heads,
            pre_norm: self.pre_norm,
        }
    }
}

/// One layer of a Feedback step: attention from the current state to the memory window, then
/// the feed-forward sublayer. Keys and values come from outside (the memory), not the layer.
#[derive(Module, Debug)]
pub struct FeedbackLayer {
    /// Norm of the attention sublayer.
    pub attn_norm: Norm,
    /// Query projection.
    pub query: Linear,
    /// Attention output projection.
    pub output: Linear,
    /// Learned vector per distance 1..=S.
    pub positions: RelativePositions,
    /// Norm of the feed-forward sublayer.
    pub ff_norm: Norm,
    /// Feed-forward sublayer.
    pub ff: FeedForward,
    /// Dropout on the attention output.
    pub dropout: Dropout,
    /// Heads H.
    pub n_heads: usize,
    /// Pre-norm (true) or post-norm.
    pub pre_norm: bool,
}

impl FeedbackLayer {
    /// Position vectors of the whole window, transposed and ready for `q · Pᵀ`: slot `j` of the
    /// window (oldest first) is at distance `S - j`. Compute once per segment.
    ///
    /// # Shapes
    /// - output: `[1, 1, Dh, S]`
    pub fn window_positions(&self) -> Tensor<4> {
        let s = self.positions.span();
        self.positions.window(s).transpose().unsqueeze::<4>()
    }

    /// One step of this layer.
    ///
    /// # Shapes
    /// - h: `[B, 1, D]` (the previous layer's output at this step)
    /// - keys, values: `[B, H, S, Dh]` (the memory window)
    /// - positions: `[1, 1, Dh, S]` from [`window_positions`](Self::window_positions)
    /// - output: `[B, 1, D]`
    pub fn forward(&self, h: Tensor<3>, keys: Tensor<4>, values: Tensor<4>, positions: Tensor<4>) -> Tensor<3> {
        self.feed_forward(self.attend_memory(h, keys, values, positions))
    }

    /// The attention sublayer alone (residual and norm included): the first half of
    /// [`forward`](Self::forward). Encoder-decoder layers put cross-attention between the halves.
    ///
    /// # Shapes
    /// - h: `[B, 1, D]`
    /// - keys, values: `[B, H, S, Dh]` (the memory window)
    /// - positions: `[1, 1, Dh, S]` from [`window_positions`](Self::window_positions)
    /// - output: `[B, 1, D]`
    pub fn attend_memory(&self, h: Tensor<3>, keys: Tensor<4>, values: Tensor<4>, positions: Tensor<4>) -> Tensor<3> {
        let [_b, _one, d] = h.dims();
        let scale = 1.0 / ((d / self.n_heads) as f64).sqrt();
        let attention = |x: Tensor<3>| {
            let q = split_heads(self.query.forward(x), self.n_heads); // [B,H,1,Dh]
            let pos = q.clone().matmul(positions).mul_scalar(scale); // [B,H,1,S]
            let a = merge_heads(attend(q, keys, values, Some(pos), None)); // [B,1,D]
            self.dropout.forward(self.output.forward(a))
        };
        if self.pre_norm {
            h.clone() + attention(self.attn_norm.forward(h))
        } else {
            self.attn_norm.forward(h.clone() + attention(h))
        }
    }

    /// The feed-forward sublayer alone (residual and norm included): the second half of
    /// [`forward`](Self::forward).
    ///
    /// # Shapes
    /// - h: `[B, T, D]`
    /// - output: `[B, T, D]`
    pub fn feed_forward(&self, h: Tensor<3>) -> Tensor<3> {
        if self.pre_norm {
            h.clone() + self.ff.forward(self.ff_norm.forward(h))
        } else {
            self.ff_norm.forward(h.clone() + self.ff.forward(h))
        }
    }
}

/// The key/value projection of memories: `K = W_k norm(m)`, `V = W_v norm(m)`.
#[derive(Module, Debug)]
pub struct MemoryProjection {
    /// Norm applied to the memory before projecting.
    pub norm: Norm,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Heads H.
    pub n_heads: usize,
}

impl MemoryProjection {
    /// Build a projection for memories of width `d_model`.
    pub fn init(d_model: usize, n_heads: usize, norm: NormKind, device: &Device) -> Self {
        Self {
            norm: NormConfig::new(d_model, norm).init(device),
            key: LinearConfig::new(d_model, d_model).init(device),
            value: LinearConfig::new(d_model, d_model).init(device),
            n_heads,
        }
    }

    /// Keys and values of memories, split into heads.
    ///
    /// # Shapes
    /// - memories: `[B, N, D]`
    /// - output: `[B, H, N, Dh]` each
    pub fn forward(&self, memories: Tensor<3>) -> (Tensor<4>, Tensor<4>) {
        let m = self.norm.forward(memories);
        (
            split_heads(self.key.forward(m.clone()), self.n_heads),
            split_heads(self.value.forward(m), self.n_heads),
        )
    }
}
