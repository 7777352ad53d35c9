//! The position-wise feed-forward sublayer: `W2 · act(W1 · x)`, `act` GELU (default) or ReLU.
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, relu};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// The feed-forward sublayer's activation (`activation = "gelu" | "relu"` in a model config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `gelu(x) = x Φ(x)` (exact, erf form).
    #[default]
    Gelu,
    /// `relu(x) = max(x, 0)` (the Feedback Transformer's official code).
    Relu,
}

impl Activation {
    /// Apply the activation elementwise.
    pub fn forward<const N: usize>(self, x: Tensor<N>) -> Tensor<N> {
        match self {
            Activation::Gelu => gelu(x),
            Activation::Relu => relu(x),
        }
    }
}

/// Configuration of a [`FeedForward`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedForwardConfig {
    /// Model width D.
    pub d_model: usize,
    /// Hidden width.
    pub d_ff: usize,
    /// Dropout on the hidden activations.
    pub dropout: f64,
    /// Activation between the two linear layers.
    pub activation: Activation,
}

impl FeedForwardConfig {
    /// Build the module.
    pub fn init(&self, device: &Device) -> FeedForward {
        FeedForward {
            up: LinearConfig::new(self.d_model, self.d_ff).init(device),
            down: LinearConfig::new(self.d_ff, self.d_model).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
        }
    }
}

/// Two linear layers with an activation (GELU by default) between them.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `D -> d_ff`.
    pub up: Linear,
    /// `d_ff -> D`.
    pub down: Linear,
    /// Dropout on the hidden activations.
    pub dropout: Dropout,
    /// Activation between the layers; fixed by the config (not a parameter).
    #[module(skip)]
    pub activation: Activation,
}

impl FeedForward {
    /// Apply the MLP position-wise.
    ///
    /// # Shapes
    /// - x: `[..., D]`
    /// - output: `[..., D]`
    pub fn forward<const N: usize>(&self, x: Tensor<N>) -> Tensor<N> {
        self.forward_with(
            x,
            |x| self.activation.forward(self.up.forward(x)),
            |x| self.down.forward(x),
        )
    }

    /// [`forward`](Self::forward) with the first product and the activation computed by
    /// `up_act` and the second product by `down` (e.g. on weights packed for host kernels):
    /// `down(dropout(up_act(x)))`, where `up_act` must compute `act(up(x))`.
    ///
    /// # Shapes
    /// - x: `[..., D]`; up_act: `[..., D] -> [..., d_ff]`; down: `[..., d_ff] -> [..., D]`
    /// - output: `[..., D]`
    pub fn forward_with<const N: usize>(
        &self,
        x: Tensor<N>,
        up_act: impl FnOnce(Tensor<N>) -> Tensor<N>,
        down: impl FnOnce(Tensor<N>) -> Tensor<N>,
    ) -> Tensor<N> {
        down(self.dropout.forward(up_act(x)))
    }
}
