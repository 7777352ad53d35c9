//! The language model around a stack of layers that run in parallel over a segment: token
//! embedding, the layers, final norm and output head, written once for the Transformer
//! ([`TransformerLm`](crate::TransformerLm)) and Transformer-XL
//! ([`TransformerXlLm`](crate::TransformerXlLm)), which differ only in their layers and in what
//! those carry from one segment or step to the next.
//!
//! `y = W_out finalnorm(layersᴸ(dropout(Emb(x))))`; the Feedback language model has a
//! sequential core instead of a stack, so it is not one of these.
//!
//! Size legend: B batch, T segment length, L layers, D d_model, V vocabulary.
use burn::module::Module;
use burn::nn::{Dropout, Embedding, Linear};
use burn::tensor::{Int, Tensor};
use mnemo_core::Norm;

use crate::output_head;
use crate::stack::TokenIo;

/// A language model over a stack of layers `L`; see the [module docs](self).
#[derive(Module, Debug)]
pub struct StackLm<L: Module> {
    /// Token embedding `V -> D`.
    pub embedding: Embedding,
    /// The L layers.
    pub layers: Vec<L>,
    /// Final norm (pre-norm, and ResiDual's on the dual stream).
    pub final_norm: Option<Norm>,
    /// Output layer `D -> V`.
    pub head: Linear,
    /// Dropout on the embeddings.
    pub dropout: Dropout,
}

impl<L: Module> StackLm<L> {
    /// The model with the embedding, final norm, head and dropout of `io` around `layers`
    /// (bottom first).
    pub(crate) fn new(io: TokenIo, layers: Vec<L>) -> Self {
        StackLm {
            embedding: io.embedding,
            layers,
            final_norm: io.final_norm,
            head: io.head,
            dropout: io.dropout,
        }
    }

    /// The bottom layer's input: the tokens' embeddings, dropped out.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - output: `[B, T, D]`
    pub fn embed(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.dropout.forward(self.embedding.forward(tokens))
    }

    /// Logits from the top layer's output.
    ///
    /// # Shapes
    /// - h: `[B, T, D]`
    /// - output: `[B, T, V]`
    pub fn logits(&self, h: Tensor<3>) -> Tensor<3> {
        output_head::logits(&self.final_norm, &self.head, h)
    }

    /// `state(layer)` for every layer, bottom first: what a fresh stream carries per layer.
    pub(crate) fn per_layer<S>(&self, state: impl FnMut(&L) -> S) -> Vec<S> {
        self.layers.iter().map(state).collect()
    }
}
