//! Reading tensors and parameters back to the host, written once, and the comparisons tests
//! make of what was read: `max |a − b|`, the population variance `Σ (x − x̄)² / n`, and
//! gradients against central finite differences `(L(θ + ε eᵢ) − L(θ − ε eᵢ)) / 2ε`.
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// A tensor's values as host `f32`, row-major.
pub fn to_vec<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float tensors read back as f32")
}

/// Every float parameter of `module`, flattened in visit order (to compare two models' weights).
pub fn parameters<M: Module>(module: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(to_vec(param.val()));
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

/// The largest absolute difference between two equally long slices (to compare outputs or
/// weights).
///
/// # Panics
/// If the lengths differ.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The largest absolute difference between two equally shaped tensors, read back.
pub fn max_abs_gap<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// The population variance of `values` (f64; `np.var`).
pub fn variance(values: &[f32]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n
}

/// Checks the autodiff gradient `analytic` of a parameter with values `base` against the
/// central finite difference `(L(θ + ε eᵢ) − L(θ − ε eᵢ)) / 2ε`, ε = 1e-2, at each index `i` of
/// `indices`, where `loss_at` is the loss with the parameter's values replaced: they must agree
/// within `2e-2 · max(|analytic|, 0.05)` (f32 losses). The error names `what`, the index and
/// both values.
pub fn check_finite_differences(
    what: &str,
    analytic: &[f32],
    base: &[f32],
    indices: &[usize],
    loss_at: impl Fn(Vec<f32>) -> f32,
) -> Result<(), String> {
    let eps = 1e-2f32;
    let moved = |index: usize, delta: f32| {
        let mut values = base.to_vec();
        values[index] += delta;
        loss_at(values)
    };
    for &i in indices {
        let numeric = (moved(i, eps) - moved(i, -eps)) / (2.0 * eps);
        let a = analytic[i];
        if (a - numeric).abs() > 2e-2 * a.abs().max(0.05) {
            return Err(format!(
                "{what}[{i}]: autodiff {a}, finite difference {numeric}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::TensorData;

    #[test]
    fn reads_values_and_every_parameter() {
        let device = mnemo_backend::test_device().inner();
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
            &device,
        );
        assert_eq!(to_vec(x), vec![1.0, 2.0, 3.0, 4.0]);
        let linear = LinearConfig::new(3, 2).init(&device);
        let flat = parameters(&linear);
        assert_eq!(flat.len(), 3 * 2 + 2, "weight then bias");
        assert_eq!(&flat[..6], to_vec(linear.weight.val()).as_slice());
    }
}
