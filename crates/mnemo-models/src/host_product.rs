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

/// `f` of `x`'s values, row-major: read in place where the backend's buffer holds them in
/// that order (a flex tensor, whoever else holds it), else from a copy.
pub(crate) fn with_rows<const D: usize, R>(x: Tensor<D>, f: impl FnOnce(&[f32]) -> R) -> R {
    let mut f = Some(f);
    let in_place = with_host_view(&x, |v| {
        v.contiguous()
            .map(|values| (f.take().expect("called once"))(values))
    })
    .flatten();
    match (in_place, f) {
        (Some(r), _) => r,
        (None, Some(f)) => f(&mnemo_core::host::to_vec(x)),
        (None, None) => unreachable!("f ran only if it returned"),
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
mod tests {
    use super::*;
    use mnemo_core::host::to_vec;

    fn tensor(rows: usize, cols: usize, seed: u64, device: &burn::tensor::Device) -> Tensor<2> {
        let values = (0..rows * cols)
            .map(|i| ((i as u64 * 2_654_435_761 + seed * 97) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        Tensor::from_data(TensorData::new(values, [rows, cols]), device)
    }

    #[test]
    fn with_rows_reads_views_in_row_major_order_in_place_or_copied() {
        let device = mnemo_backend::device("flex").unwrap();
        let x = tensor(6, 5, 7, &device);
        let all = to_vec(x.clone());
        // Rows 2..5: contiguous at an offset (read in place); the transpose: strided (copied).
        let rows = with_rows(x.clone().narrow(0, 2, 3), <[f32]>::to_vec);
        assert_eq!(rows, all[10..25].to_vec());
        let transposed = with_rows(x.clone().transpose(), <[f32]>::to_vec);
        assert_eq!(transposed, to_vec(x.transpose()));
        // Off the host (autodiff) the values come from a copy.
        let ad = tensor(2, 3, 8, &mnemo_backend::test_device());
        assert_eq!(with_rows(ad.clone(), <[f32]>::to_vec), to_vec(ad));
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
