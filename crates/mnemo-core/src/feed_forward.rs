//! The position-wise feed-forward sublayer: `W2 · gelu(W1 · x)`.
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

/// Configuration of a [`FeedForward`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedForwardConfig {
    /// Model width D.
    pub d_model: usize,
    /// Hidden width.
    pub d_ff: usize,
    /// Dropout on the hidden activations.
    pub dropout: f64,
}

impl FeedForwardConfig {
    /// Build the module.
    pub fn init(&self, device: &Device) -> FeedForward {
        FeedForward {
            up: LinearConfig::new(self.d_model, self.d_ff).init(device),
            down: LinearConfig::new(self.d_ff, self.d_model).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// Two linear layers with a GELU between them.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `D -> d_ff`.
    pub up: Linear,
    /// `d_ff -> D`.
    pub down: Linear,
    /// Dropout on the hidden activations.
    pub dropout: Dropout,
}

impl FeedForward {
    /// Apply the MLP position-wise.
    ///
    /// # Shapes
    /// - x: `[..., D]`
    /// - output: `[..., D]`
    pub fn forward<const N: usize>(&self, x: Tensor<N>) -> Tensor<N> {
        self.down
            .forward(self.dropout.forward(gelu(self.up.forward(x))))
    }
}
