//! Reading tensors and parameters back to the host, written once.
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
