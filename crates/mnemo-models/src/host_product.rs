//! `A · B` of two matrices for the manual backwards' large products (whole-segment layers, weight
//! gradients): on the `flex` backend through [`mnemo_kernels::product`], reading both operands
//! where they lie (a transposed weight or a tensor still held elsewhere is not copied) into an
//! output that is not zero-filled first; burn's `matmul` elsewhere. Both make the same `gemm`
//! call, so the results are equal bit for bit.
use burn::tensor::{Tensor, TensorData};
use mnemo_backend::{HostView, with_host_view};
use mnemo_kernels::{Operand, product};

/// `a · b`.
///
/// # Shapes
/// - a: `[m, k]`, b: `[k, n]`
/// - output: `[m, n]`
pub(crate) fn matmul(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let ([m, _], [_, n]) = (a.dims(), b.dims());
    let on_host = with_host_view(&a, |va| {
        with_host_view(&b, |vb| Some(product(operand(va)?, operand(vb)?))).flatten()
    })
    .flatten();
    match on_host {
        Some(values) => Tensor::from_data(TensorData::new(values, [m, n]), &a.device()),
        None => a.matmul(b),
    }
}

/// A 2-D view as a product operand; None for negative strides (flipped views).
fn operand(v: HostView<'_>) -> Option<Operand<'_>> {
    let (&[rows, cols], &[row_stride, col_stride]) = (v.shape, v.strides) else {
        return None;
    };
    (row_stride >= 0 && col_stride >= 0).then_some(Operand {
        data: v.data,
        rows,
        cols,
        row_stride,
        col_stride,
        offset: v.offset,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mnemo_core::host::to_vec;

    /// A `[rows, cols]` matrix of deterministic values in [-1, 1), varied by `seed`.
    pub(crate) fn tensor(
        rows: usize,
        cols: usize,
        seed: u64,
        device: &burn::tensor::Device,
    ) -> Tensor<2> {
        let values = (0..rows * cols)
            .map(|i| ((i as u64 * 2_654_435_761 + seed * 97) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        Tensor::from_data(TensorData::new(values, [rows, cols]), device)
    }

    #[test]
    fn equals_burns_matmul_bit_for_bit_on_views_and_falls_back_off_the_host() {
        let device = mnemo_backend::device("flex").unwrap();
        let (x, w) = (tensor(300, 70, 1, &device), tensor(90, 70, 2, &device));
        // x · wᵀ with wᵀ a strided view, and a narrowed, transposed left operand (xᵀ · y).
        let y = tensor(300, 90, 3, &device);
        let cases = [
            (x.clone(), w.clone().transpose()),
            (
                x.clone().narrow(0, 10, 200).transpose(),
                y.narrow(0, 10, 200),
            ),
        ];
        for (a, b) in cases {
            let ours = to_vec(matmul(a.clone(), b.clone()));
            assert_eq!(ours, to_vec(a.matmul(b)));
        }
        // With autodiff the product stays burn's (and differentiable).
        let ad = mnemo_backend::test_device();
        let (a, b) = (tensor(4, 3, 4, &ad).require_grad(), tensor(3, 5, 5, &ad));
        let grads = matmul(a.clone(), b).sum().backward();
        assert!(
            a.grad(&grads).is_some(),
            "autodiff operands keep their graph"
        );
    }
}
