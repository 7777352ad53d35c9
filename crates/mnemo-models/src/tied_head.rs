//! The translation model's tied output head, `logits = h · Eᵀ` with `E` the shared embedding
//! `[V, D]`, on the host kernels: `Eᵀ` packed once for `mnemo_kernels` (a host
//! [`StepMatrix`], as the manual backward packs a step's weights) and multiplied row block by
//! row block on both cores.
//!
//! The head is the largest product of a decoding step (`[B·K, D] · [D, V]`, V in the thousands,
//! D ~128, B·K rows of a beam search) and burn's `gemm` handles it poorly: it packs the whole
//! `Eᵀ` again at every call, for a product of few rows over a short inner dimension. A decoding
//! state packs the head once, at its start ([`Seq2Seq::start`](crate::Seq2Seq::start)), and
//! each step ([`Seq2Seq::step`](crate::Seq2Seq::step)) multiplies by it. Whole sequences
//! (training, evaluation: thousands of rows at once) keep burn's product, as do devices off the
//! host and autodiff weights.
//!
//! Size legend: N rows, D d_model, V vocabulary.
use std::sync::Arc;

use burn::tensor::Tensor;
use mnemo_backend::runs_on_host;

use crate::feedback::{StepMatrix, StepProducts};

/// `Eᵀ` packed for the host kernels; see the [module docs](self). Cloning shares the packing.
#[derive(Debug, Clone)]
pub(crate) struct PackedHead(Arc<StepMatrix>);

impl PackedHead {
    /// The head of embedding `emb`, packed; None where the product stays burn's (a device off
    /// the host, or autodiff weights).
    ///
    /// # Shapes
    /// - emb: `[V, D]`
    pub(crate) fn of(emb: &Tensor<2>) -> Option<Self> {
        if emb.is_autodiff() || !runs_on_host(&emb.device()) {
            return None;
        }
        // E is Mᵀ for M = Eᵀ `[D, V]`.
        let head = StepMatrix::from_transposed(emb.clone(), StepProducts::Host);
        Some(Self(Arc::new(head)))
    }

    /// `h · Eᵀ`: the same sums as burn's product in another rounding order.
    ///
    /// # Shapes
    /// - h: `[N, D]`
    /// - output: `[N, V]`
    pub(crate) fn logits(&self, h: Tensor<2>) -> Tensor<2> {
        self.0.apply(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_product::tests::tensor;
    use mnemo_core::host::{max_abs_diff, to_vec};

    /// The packed head equals burn's `h · Eᵀ` to rounding, for row counts on both sides of the
    /// kernels' row blocks and a vocabulary that ends inside a column panel; autodiff weights
    /// get no packing.
    #[test]
    fn packed_head_equals_burns_product() {
        let device = mnemo_backend::device("flex").unwrap();
        let emb = tensor(1003, 48, 1, &device);
        let head = PackedHead::of(&emb).expect("a host device packs the head");
        for n in [1, 3, 8, 17, 130] {
            let h = tensor(n, 48, n as u64 + 2, &device);
            let want = to_vec(h.clone().matmul(emb.clone().transpose()));
            let got = to_vec(head.logits(h));
            assert_eq!(got.len(), want.len());
            let worst = max_abs_diff(&got, &want);
            assert!(worst < 1e-4, "{n} rows: differs by {worst}");
        }
        let autodiff = mnemo_backend::autodiff_device("flex").unwrap();
        assert!(PackedHead::of(&tensor(10, 4, 1, &autodiff).require_grad()).is_none());
    }
}
