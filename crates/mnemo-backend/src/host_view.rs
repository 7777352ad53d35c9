//! Reading a CPU backend's float tensor where it lies, whoever else holds it.
//!
//! burn's `into_data` hands a buffer over without copying only when nothing else holds the
//! tensor; weights (held by their module) and activations still needed later are copied. Host
//! kernels that only read (`mnemo_kernels::product`) can instead borrow the backend's storage
//! with its strides, as burn-flex's own matmul does.

use burn::tensor::{DType, Tensor};

/// A float tensor's values as they lie in a host backend's storage: element `(i₀, i₁, …)` is
/// `data[offset + Σ iₖ · strides[k]]`.
#[derive(Debug, Clone, Copy)]
pub struct HostView<'a> {
    /// The whole storage buffer the tensor is a view of.
    pub data: &'a [f32],
    /// The tensor's shape.
    pub shape: &'a [usize],
    /// Elements between neighbours along each dimension (negative for flipped views).
    pub strides: &'a [isize],
    /// Index in `data` of the first element.
    pub offset: usize,
}

impl<'a> HostView<'a> {
    /// The values in row-major order when they lie that way in the buffer (a contiguous view);
    /// None for a strided or offset-transposed view.
    pub fn contiguous(&self) -> Option<&'a [f32]> {
        let mut expected = 1isize;
        for (&n, &stride) in self.shape.iter().zip(self.strides).rev() {
            if n > 1 && stride != expected {
                return None;
            }
            expected *= n as isize;
        }
        self.data.get(self.offset..self.offset + expected as usize)
    }
}

/// `f` of `x`'s values in place, when `x` is an `f32` tensor of the `flex` backend without
/// autodiff; None (and `f` not called) on every other backend, dtype or an autodiff tensor, where
/// the caller takes burn's own path.
pub fn with_host_view<const D: usize, R>(
    x: &Tensor<D>,
    f: impl FnOnce(HostView<'_>) -> R,
) -> Option<R> {
    if x.dtype() != DType::F32 {
        return None;
    }
    #[cfg(feature = "flex")]
    if let Ok(t) = x.clone().try_into_primitive::<burn::backend::Flex>() {
        let layout = t.layout();
        return Some(f(HostView {
            data: t.storage::<f32>(),
            shape: layout.shape(),
            strides: layout.strides(),
            offset: layout.start_offset(),
        }));
    }
    let _ = f;
    None
}

/// `f` of `x`'s values as host `f32`, row-major, read without a copy where possible: in place
/// from a flex tensor laid out row-major ([`HostView::contiguous`]), whoever else holds it;
/// otherwise through `into_data`, which hands over the backend's buffer when nothing else holds
/// the tensor and copies only when something does (or it lies elsewhere, or strided).
pub fn with_slice<const D: usize, R>(x: Tensor<D>, f: impl FnOnce(&[f32]) -> R) -> R {
    let mut f = Some(f);
    let in_place = with_host_view(&x, |v| {
        v.contiguous()
            .map(|values| (f.take().expect("called once"))(values))
    })
    .flatten();
    match (in_place, f) {
        (Some(r), _) => r,
        (None, Some(f)) => {
            let data = x.into_data().convert::<f32>();
            f(data
                .as_slice::<f32>()
                .expect("float tensors read back as f32"))
        }
        (None, None) => unreachable!("f ran only if it returned"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn at(v: &HostView<'_>, index: [usize; 2]) -> f32 {
        let i =
            v.offset as isize + index[0] as isize * v.strides[0] + index[1] as isize * v.strides[1];
        v.data[i as usize]
    }

    #[test]
    fn views_flex_tensors_with_their_strides_and_nothing_else() {
        let device = crate::device("flex").unwrap();
        let values: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let x = Tensor::<2>::from_data(TensorData::new(values, [3, 4]), &device);
        // A transposed slice of a tensor that something else still holds: read in place.
        let view_of = x.clone().narrow(0, 1, 2).transpose(); // [4, 2]: (i, j) = x[1 + j][i]
        let read = with_host_view(&view_of, |v| {
            assert_eq!(v.shape, &[4, 2]);
            (0..4)
                .flat_map(|i| (0..2).map(move |j| (i, j)))
                .map(|(i, j)| at(&v, [i, j]))
                .collect::<Vec<_>>()
        })
        .expect("a flex f32 tensor has a host view");
        let expected: Vec<f32> = (0..4)
            .flat_map(|i| (0..2).map(move |j| ((1 + j) * 4 + i) as f32))
            .collect();
        assert_eq!(read, expected);
        let rows = x.clone().narrow(0, 1, 2); // rows 1 and 2: contiguous at offset 4
        let contiguous = with_host_view(&rows, |v| v.contiguous().map(<[f32]>::to_vec)).unwrap();
        assert_eq!(contiguous, Some((4..12).map(|i| i as f32).collect()));
        assert_eq!(
            with_host_view(&view_of, |v| v.contiguous().is_some()),
            Some(false)
        );
        // `with_slice`: row-major values of an offset contiguous view (in place), of a
        // transposed view and of an autodiff tensor (both through `into_data`).
        let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        let all = values(x.clone());
        assert_eq!(with_slice(rows, <[f32]>::to_vec), all[4..12].to_vec());
        let transposed = x.clone().transpose();
        assert_eq!(
            with_slice(transposed.clone(), <[f32]>::to_vec),
            values(transposed)
        );
        let ad = Tensor::<2>::from_data(
            TensorData::new(all.clone(), [3, 4]),
            &device.clone().autodiff(),
        );
        assert_eq!(with_slice(ad, <[f32]>::to_vec), all);
        // Autodiff tensors take burn's path.
        let tracked =
            Tensor::<2>::from_data(TensorData::new(vec![1.0f32; 4], [2, 2]), &device.autodiff())
                .require_grad();
        assert!(with_host_view(&tracked, |_| ()).is_none());
    }
}
