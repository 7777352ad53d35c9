//! The feed-forward sublayer as the Transformer-style layers run it (the Transformer and
//! Transformer-XL LMs, the seq2seq encoder and Transformer decoder): GELU on the vectorised host
//! kernel wherever the hidden activations live in host memory (burn's GELU is a scalar `erf`
//! per element, forward and backward): read in place for a plain tensor (inference); for an
//! autodiff tensor (training) one kernel pass gives the values and the derivative, joined to
//! the graph as `y + (x − stop(x))·g`; burn's GELU on other backends. The kernel is within
//! 1.5e-7 of the exact erf (`mnemo_kernels::gelu`).
use burn::tensor::{Tensor, TensorData};
use mnemo_backend::{runs_on_host, with_host_view};
use mnemo_core::{Activation, FeedForward};
use mnemo_kernels::{Isa, gelu};

use crate::feedback::backward::activation::activate_on_host;

/// `down(dropout(act(up(x))))` with [`activate`]'s GELU.
///
/// # Shapes
/// - x: `[..., D]`; output `[..., D]`
pub(crate) fn feed_forward<const N: usize>(ff: &FeedForward, x: Tensor<N>) -> Tensor<N> {
    ff.forward_with(
        x,
        |x| activate(ff.activation, ff.up.forward(x)),
        |x| ff.down.forward(x),
    )
}

/// `activation(x)`: GELU on the host kernel where `x` lives in host memory (a plain tensor read
/// in place, an autodiff one through [`gelu_linearised`]), otherwise the activation's burn ops.
///
/// # Shapes
/// - x: any; output as x
pub(crate) fn activate<const N: usize>(activation: Activation, x: Tensor<N>) -> Tensor<N> {
    if activation != Activation::Gelu {
        return activation.forward(x);
    }
    if x.is_autodiff() {
        return match runs_on_host(&x.device()) {
            true => gelu_linearised(x),
            false => activation.forward(x),
        };
    }
    let on_host = with_host_view(&x, |view| {
        view.contiguous().map(|values| {
            let mut y = vec![0.0f32; values.len()];
            gelu(Isa::detect(), values, &mut y);
            y
        })
    })
    .flatten();
    match on_host {
        Some(y) => Tensor::from_data(TensorData::new(y, x.dims()), &x.device()),
        None => activation.forward(x),
    }
}

/// GELU of an autodiff tensor with the host kernel's values `y` and derivative `g` (one pass,
/// both constants of the graph): `y + (x − stop(x))·g`, whose value is `y` (the second term is
/// exactly 0) and whose gradient is `g` times the incoming one, as GELU's.
///
/// # Shapes
/// - x: any; output as x
fn gelu_linearised<const N: usize>(x: Tensor<N>) -> Tensor<N> {
    let (y, g) = activate_on_host(Activation::Gelu, x.clone().detach());
    y + (x.clone() - x.detach()) * g
}

#[cfg(test)]
mod tests {
    use super::*;
    use mnemo_core::FeedForwardConfig;
    use mnemo_core::host::to_vec;

    /// On a plain CPU tensor the sublayer takes the host kernel (its values bit for bit) within
    /// 1e-6 of burn's GELU; on an autodiff tensor its values and the gradients of its input and
    /// weights are burn's within 1e-5.
    #[test]
    fn host_gelu_matches_burn_s_in_inference_and_training() {
        let autodiff = mnemo_backend::test_device();
        let plain = autodiff.clone().inner();
        let config = FeedForwardConfig {
            d_model: 8,
            d_ff: 24,
            dropout: 0.0,
            activation: Activation::Gelu,
        };
        let ff = config.init(&plain);
        let values: Vec<f32> = (0..3 * 5 * 8)
            .map(|i| ((i * 37 % 29) as f32 - 14.0) * 0.3)
            .collect();
        let x = Tensor::<3>::from_data(TensorData::new(values.clone(), [3, 5, 8]), &plain);
        let (got, want) = (feed_forward(&ff, x.clone()), ff.forward(x.clone()));
        let diff = largest_difference(&to_vec(got), &to_vec(want));
        assert!(diff < 1e-6, "host GELU differs from burn's by {diff}");
        // The kernel's own values, bit for bit.
        let hidden = ff.up.forward(x.clone());
        let pre = to_vec(hidden.clone());
        let mut kernel = vec![0.0; pre.len()];
        gelu(Isa::detect(), &pre, &mut kernel);
        assert_eq!(to_vec(activate(Activation::Gelu, hidden)), kernel);

        // Training: the kernel's values, burn's gradients (of the input and of the weights).
        let ff = config.init(&autodiff);
        let grads_of = |host: bool| {
            let x = Tensor::<3>::from_data(TensorData::new(values.clone(), [3, 5, 8]), &autodiff)
                .require_grad();
            let y = match host {
                true => feed_forward(&ff, x.clone()),
                false => ff.forward(x.clone()),
            };
            let probe = y.clone().sin(); // a loss whose gradient differs per element
            let grads = probe.sum().backward();
            let dx = to_vec(x.grad(&grads).expect("x has a gradient"));
            let dw = to_vec(ff.up.weight.grad(&grads).expect("up has a gradient"));
            (to_vec(y), dx, dw)
        };
        let (host, burn) = (grads_of(true), grads_of(false));
        let pairs = [(&host.0, &burn.0), (&host.1, &burn.1), (&host.2, &burn.2)];
        for ((h, b), what) in pairs
            .into_iter()
            .zip(["values", "input grad", "weight grad"])
        {
            let diff = largest_difference(h, b);
            assert!(diff < 1e-5, "training {what} differ from burn's by {diff}");
        }
    }

    /// `max |a − b|`.
    fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }
}
