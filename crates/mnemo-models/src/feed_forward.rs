//! The feed-forward sublayer as the Transformer-style layers run it (the Transformer and
//! Transformer-XL LMs, the seq2seq encoder and Transformer decoder): GELU on the vectorised host
//! kernel where the hidden activations are a plain tensor in host memory (inference on the CPU
//! backend; burn's GELU is a scalar `erf` per element), burn's GELU elsewhere (autodiff
//! training, other backends). The kernel is within 1.5e-7 of the exact erf (`mnemo_kernels::gelu`).
use burn::tensor::{Tensor, TensorData};
use mnemo_backend::with_host_view;
use mnemo_core::{Activation, FeedForward};
use mnemo_kernels::{Isa, gelu};

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

/// `activation(x)`: GELU of a plain host tensor laid out row-major on the host kernel (read in
/// place), otherwise the activation's burn ops.
///
/// # Shapes
/// - x: any; output as x
pub(crate) fn activate<const N: usize>(activation: Activation, x: Tensor<N>) -> Tensor<N> {
    if activation != Activation::Gelu {
        return activation.forward(x);
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

#[cfg(test)]
mod tests {
    use super::*;
    use mnemo_core::FeedForwardConfig;
    use mnemo_core::host::to_vec;

    /// On a plain CPU tensor the sublayer takes the host kernel (its values bit for bit) within
    /// 1e-6 of burn's GELU; on an autodiff tensor it is burn's sublayer exactly and gradients
    /// flow.
    #[test]
    fn host_gelu_in_inference_burn_s_in_training() {
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
        let got = to_vec(feed_forward(&ff, x.clone()));
        let want = to_vec(ff.forward(x.clone()));
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-6, "host GELU differs from burn's by {diff}");
        // The kernel's own values, bit for bit.
        let hidden = ff.up.forward(x.clone());
        let pre = to_vec(hidden.clone());
        let mut kernel = vec![0.0; pre.len()];
        gelu(Isa::detect(), &pre, &mut kernel);
        assert_eq!(to_vec(activate(Activation::Gelu, hidden)), kernel);

        let ff = config.init(&autodiff);
        let x =
            Tensor::<3>::from_data(TensorData::new(values, [3, 5, 8]), &autodiff).require_grad();
        let y = feed_forward(&ff, x.clone());
        let grads = y.clone().sum().backward();
        assert!(
            x.grad(&grads).is_some(),
            "gradients flow through the training path"
        );
        assert_eq!(to_vec(y), to_vec(ff.forward(x)));
    }
}
