//! The layers around a core in a manual backward, written once for the Feedback language
//! model ([`super::lm`]) and the Transformer ([`crate::transformer::backward`]): logits
//! `y = W_out finalnorm(top)` forward and backward, and the token embedding's gradient; and
//! for both translation decoders ([`super::seq2seq`], the Transformer decoder's), the final
//! norm with the head tied to the embedding ([`TiedHead`]).
//!
//! Size legend: B batch, T segment length, D d_model, V vocabulary, N = B·T rows.
use burn::module::ParamId;
use burn::nn::Embedding;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use mnemo_backend::with_host_view;

use super::params::{LinearParams, NormParams};
use crate::host_product::matmul;

/// What the output layers' gradients need, kept by [`output_backward`].
pub(crate) struct OutputTape {
    /// The normed top states, `[N, D]` (the head's input).
    top_normed: Tensor<2>,
    /// `dL/dlogits`, `[N, V]`.
    dlogits: Tensor<2>,
    /// `dL/d(normed top)`, `[N, D]`.
    dtop_normed: Tensor<2>,
    /// The final norm's `x̂`, `[N, D]`.
    top_hat: Tensor<2>,
}

impl OutputTape {
    /// Register the head's and the final norm's gradients.
    pub(crate) fn register(
        self,
        grads: &mut GradientsParams,
        final_norm: &NormParams,
        head: &LinearParams,
    ) {
        head.register(grads, self.top_normed, self.dlogits);
        final_norm.register(grads, self.dtop_normed, self.top_hat);
    }
}

/// The output layers over a batch's top states, written once for [`output_backward`] and
/// for callers that split the batch between threads (the Transformer's halves): the final norm
/// and the head.
pub(crate) struct OutputLayers<'a> {
    pub(crate) final_norm: &'a NormParams,
    pub(crate) head: &'a LinearParams,
}

/// What the output layers' forward keeps for their gradient ([`OutputLayers::forward`]).
pub(crate) struct OutputForward {
    /// The normed top states, `[N, D]`.
    top_normed: Tensor<2>,
    /// The final norm's `x̂` and `1/σ`, `[N, D]` and `[N, 1]`.
    top_hat: Tensor<2>,
    top_rstd: Tensor<2>,
}

impl OutputLayers<'_> {
    /// The logits of the top states.
    ///
    /// # Shapes
    /// - top: `[N, D]`; output: logits `[N, V]`
    pub(crate) fn forward(&self, top: Tensor<2>) -> (Tensor<2>, OutputForward) {
        let (top_hat, top_rstd) = self.final_norm.stats(top);
        let top_normed = self.final_norm.affine(top_hat.clone());
        let logits = self.head.forward(top_normed.clone());
        let fwd = OutputForward {
            top_normed,
            top_hat,
            top_rstd,
        };
        (logits, fwd)
    }

    /// The gradient of the loss for the top states from that for the logits, and the tape of
    /// the output layers' own gradients.
    ///
    /// # Shapes
    /// - dlogits: `[N, V]`; output: dtop `[N, D]`
    pub(crate) fn backward(
        &self,
        fwd: OutputForward,
        dlogits: Tensor<2>,
    ) -> (Tensor<2>, OutputTape) {
        let norm = self.final_norm;
        let dtop_normed = self.head.input_grad(dlogits.clone()); // [N,D]
        let dtop = norm.backward(
            norm.fold(dtop_normed.clone()),
            fwd.top_hat.clone(),
            fwd.top_rstd,
        );
        let tape = OutputTape {
            top_normed: fwd.top_normed,
            dlogits,
            dtop_normed,
            top_hat: fwd.top_hat,
        };
        (dtop, tape)
    }
}

/// A translation decoder's final norm and the head tied to the embedding `E` `[V, D]`:
/// `logits = norm(top) · Eᵀ`, its products on the host kernels where the tensors are host
/// tensors (no transposed copy of `E` or of `dL/dlogits`).
pub(crate) struct TiedHead<'a> {
    pub(crate) final_norm: &'a NormParams,
    /// `E`, `[V, D]` (plain device).
    pub(crate) embedding: Tensor<2>,
    /// The embedding's parameter id, under which the head's gradient is registered.
    pub(crate) id: ParamId,
}

/// What [`TiedHead::forward`] keeps for its backward: the final norm's `x̂` `[N, D]` and
/// `1/σ` `[N, 1]`, and the normed top states `[N, D]`.
pub(crate) type TiedTape = (Tensor<2>, Tensor<2>, Tensor<2>);

impl<'a> TiedHead<'a> {
    /// `final_norm`, then the head tied to `embedding` (its weight read on the plain device).
    pub(crate) fn of(final_norm: &'a NormParams, embedding: &Embedding) -> Self {
        Self {
            final_norm,
            embedding: embedding.weight.val().inner(),
            id: embedding.weight.id,
        }
    }

    /// The logits of the top states.
    ///
    /// # Shapes
    /// - top: `[N, D]`; output: logits `[N, V]`
    pub(crate) fn forward(&self, top: Tensor<2>) -> (Tensor<2>, TiedTape) {
        let (xhat, rstd) = self.final_norm.stats(top);
        let normed = self.final_norm.affine(xhat.clone());
        let logits = matmul(normed.clone(), self.embedding.clone().transpose());
        (logits, (xhat, rstd, normed))
    }

    /// The gradient of the top states from that of the logits, registering the embedding's
    /// (as the head) and the final norm's.
    ///
    /// # Shapes
    /// - dlogits: `[N, V]`; output: dtop `[N, D]`
    pub(crate) fn backward(
        &self,
        grads: &mut GradientsParams,
        (xhat, rstd, normed): TiedTape,
        dlogits: Tensor<2>,
    ) -> Tensor<2> {
        let dnormed = matmul(dlogits.clone(), self.embedding.clone());
        grads.register(self.id, matmul(dlogits.transpose(), normed));
        self.final_norm
            .register(grads, dnormed.clone(), xhat.clone());
        self.final_norm
            .backward(self.final_norm.fold(dnormed), xhat, rstd)
    }
}

/// The logits of the top states and, from `loss_grad` (which receives the logits and returns
/// `dL/dlogits`), the gradient of the loss for the top states.
///
/// # Shapes
/// - top: `[B, T, D]`; loss_grad: `[B, T, V] -> [B, T, V]`
/// - output: logits `[B, T, V]`, dtop `[B, T, D]`
pub(crate) fn output_backward(
    final_norm: &NormParams,
    head: &LinearParams,
    top: Tensor<3>,
    loss_grad: impl FnOnce(Tensor<3>) -> Tensor<3>,
) -> (Tensor<3>, Tensor<3>, OutputTape) {
    let [b, t_len, d] = top.dims();
    let layers = OutputLayers { final_norm, head };
    let (logits, fwd) = layers.forward(top.reshape([b * t_len, d]));
    let v = logits.dims()[1];
    let logits = logits.reshape([b, t_len, v]);
    let dlogits = loss_grad(logits.clone()).inner().reshape([b * t_len, v]);
    let (dtop, tape) = layers.backward(fwd, dlogits);
    (logits, dtop.reshape([b, t_len, d]), tape)
}

/// The embedding table's gradient: each input row's gradient added into its token's row. On
/// the host (a flex tensor) a scatter-add in row order; elsewhere a one-hot matmul (`[V, N]`
/// one-hot rows times `dx`: for small vocabularies on devices without a fast scatter).
///
/// # Shapes
/// - ids: `[N]`; dx: `[N, D]`
/// - output: `[V, D]`
pub(crate) fn embedding_grad(ids: Tensor<1, Int>, dx: Tensor<2>, vocab: usize) -> Tensor<2> {
    let [n, d] = dx.dims();
    let ids: Vec<usize> = ids
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("int ids")
        .into_iter()
        .map(|id| id as usize)
        .collect();
    let on_host = with_host_view(&dx, |v| {
        let rows = v.contiguous()?;
        let mut out = vec![0.0f32; vocab * d];
        for (&id, row) in ids.iter().zip(rows.chunks_exact(d)) {
            for (o, x) in out[id * d..(id + 1) * d].iter_mut().zip(row) {
                *o += x;
            }
        }
        Some(out)
    })
    .flatten();
    if let Some(values) = on_host {
        return Tensor::from_data(TensorData::new(values, [vocab, d]), &dx.device());
    }
    let mut onehot = vec![0.0f32; n * vocab];
    for (r, &id) in ids.iter().enumerate() {
        onehot[r * vocab + id] = 1.0;
    }
    let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [n, vocab]), &dx.device());
    onehot.transpose().matmul(dx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use mnemo_core::host::to_vec;

    /// The host scatter-add equals the one-hot product burn computes (repeated ids summed,
    /// rows of unseen ids zero).
    #[test]
    fn embedding_grad_on_the_host_equals_the_one_hot_product() {
        let device = mnemo_backend::test_device().inner();
        let (vocab, d) = (11, 6);
        let ids = [3i64, 7, 3, 0, 10, 3, 7];
        let n = ids.len();
        let dx = Tensor::<2>::random([n, d], Distribution::Normal(0.0, 1.0), &device);
        let id_tensor = Tensor::<1, Int>::from_data(TensorData::new(ids.to_vec(), [n]), &device);
        let got = to_vec(embedding_grad(id_tensor, dx.clone(), vocab));
        let mut onehot = vec![0.0f32; n * vocab];
        for (r, &id) in ids.iter().enumerate() {
            onehot[r * vocab + id as usize] = 1.0;
        }
        let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [n, vocab]), &device);
        let want = to_vec(onehot.transpose().matmul(dx));
        assert_eq!(got.len(), vocab * d);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
        assert!(
            got[d..2 * d].iter().all(|&x| x == 0.0),
            "id 1 is never read"
        );
    }
}
