//! The feed-forward activation in a manual backward: its derivative in burn's ops, and GELU
//! with its derivative in one pass of the host kernel (`mnemo_kernels::gelu_and_grad`, a
//! vectorised `erf` within 1.5e-7 of the exact one burn's `gelu` computes) for tensors in host
//! memory. Shared by the Feedback core's and the Transformer's manual backward; the Feedback
//! step with host products takes [`gelu_on_host`] (values only).
use burn::tensor::{Tensor, TensorData};
use mnemo_backend::with_slice;
use mnemo_core::Activation;
use mnemo_kernels::{Isa, gelu, gelu_and_grad};

/// The activation at `pre` and its derivative there: GELU on the host kernel (`pre` is read
/// back to host memory), ReLU in burn's ops.
///
/// # Shapes
/// - pre: any, e.g. `[N, F]`; outputs as pre
pub(crate) fn activate_on_host<const N: usize>(
    activation: Activation,
    pre: Tensor<N>,
) -> (Tensor<N>, Tensor<N>) {
    match activation {
        Activation::Gelu => {
            let (dims, device) = (pre.dims(), pre.device());
            let (y, g) = with_slice(pre, |x| {
                let (mut y, mut g) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
                gelu_and_grad(Isa::detect(), x, &mut y, &mut g);
                (y, g)
            });
            let tensor = |v| Tensor::from_data(TensorData::new(v, dims), &device);
            (tensor(y), tensor(g))
        }
        Activation::Relu => (
            activation.forward(pre.clone()),
            activation_grad(activation, pre),
        ),
    }
}

/// GELU on the host kernel (`x` read back to host memory): [`activate_on_host`]'s values
/// without the derivative.
///
/// # Shapes
/// - x: any; output as x
pub(crate) fn gelu_on_host<const N: usize>(x: Tensor<N>) -> Tensor<N> {
    let (dims, device) = (x.dims(), x.device());
    let y = with_slice(x, |x| {
        let mut y = vec![0.0f32; x.len()];
        gelu(Isa::detect(), x, &mut y);
        y
    });
    Tensor::from_data(TensorData::new(y, dims), &device)
}

/// The derivative of `activation` at `f1`, elementwise, in burn's ops.
///
/// # Shapes
/// - f1: any, e.g. `[T, B, F]`; output as f1
pub(crate) fn activation_grad<const N: usize>(activation: Activation, f1: Tensor<N>) -> Tensor<N> {
    match activation {
        Activation::Gelu => {
            // gelu'(x) = Φ(x) + x φ(x)
            let inv_sqrt_2pi = 1.0 / (2.0 * std::f32::consts::PI).sqrt();
            let cdf = (f1.clone().mul_scalar(std::f32::consts::FRAC_1_SQRT_2).erf() + 1.0)
                .mul_scalar(0.5);
            let pdf = f1
                .clone()
                .square()
                .mul_scalar(-0.5)
                .exp()
                .mul_scalar(inv_sqrt_2pi);
            cdf + f1 * pdf
        }
        // relu'(x) = 1 for x > 0, else 0 (PyTorch's and burn's choice at 0)
        Activation::Relu => f1.greater_elem(0.0).float(),
    }
}
