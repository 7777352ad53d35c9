//! A norm's parameters on the host, and a step's rows through it on the CPU kernels
//! ([`mnemo_kernels::NormRows`]): the host-row decoding step and the manual forward and
//! backward with host products use it instead of burn's element-wise operations.
use burn::tensor::{Device, Tensor, TensorData};
use mnemo_backend::with_slice;
use mnemo_core::Norm;
use mnemo_kernels::{Isa, NormRows};

use super::backward::params::NormParams;
use super::host;

/// A norm's γ, β and ε on the host.
#[derive(Debug)]
pub(crate) struct HostNorm {
    /// LayerNorm (centred) or RMSNorm.
    layer: bool,
    gamma: Vec<f32>,
    beta: Option<Vec<f32>>,
    eps: f32,
    isa: Isa,
}

impl HostNorm {
    pub(crate) fn of(norm: &Norm) -> Self {
        Self::of_params(&NormParams::of(norm))
    }

    /// The host copy of parameters already read.
    pub(crate) fn of_params(p: &NormParams) -> Self {
        Self {
            layer: p.layer,
            gamma: host(p.gamma.clone()),
            beta: p.beta.clone().map(host),
            eps: p.eps as f32,
            isa: Isa::detect(),
        }
    }

    fn rows(&self) -> NormRows<'_> {
        NormRows {
            centred: self.layer,
            gamma: &self.gamma,
            beta: self.beta.as_deref(),
            eps: self.eps,
        }
    }

    /// The norm of every row of `x`.
    ///
    /// # Shapes
    /// - x, output: `[B, D]` row-major
    pub(crate) fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0f32; x.len()];
        self.rows().forward(self.isa, x, &mut y);
        y
    }

    /// [`forward`](Self::forward) of a tensor's rows, as a tensor.
    ///
    /// # Shapes
    /// - x, output: `[B, D]`
    pub(crate) fn forward_tensor(&self, x: Tensor<2>) -> Tensor<2> {
        let (dims, device) = (x.dims(), x.device());
        with_slice(x, |x| tensor(self.forward(x), dims, &device))
    }

    /// The normalised rows `x̂` and each row's `1/σ`, as tensors.
    ///
    /// # Shapes
    /// - x, x̂: `[B, D]`; `1/σ`: `[B, 1]`
    pub(crate) fn stats_tensor(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let ([b, d], device) = (x.dims(), x.device());
        let (mut xhat, mut rstd) = (vec![0.0f32; b * d], vec![0.0f32; b]);
        with_slice(x, |x| self.rows().stats(self.isa, x, &mut xhat, &mut rstd));
        (tensor(xhat, [b, d], &device), tensor(rstd, [b, 1], &device))
    }

    /// `dx` from `dx̂ = dy ⊙ γ`, the normalised rows and `1/σ` (see
    /// [`NormParams::backward`]).
    ///
    /// # Shapes
    /// - dxhat, xhat, output: `[B, D]`; rstd: `[B, 1]`
    pub(crate) fn backward_tensor(
        &self,
        dxhat: Tensor<2>,
        xhat: Tensor<2>,
        rstd: Tensor<2>,
    ) -> Tensor<2> {
        let (dims, device) = (dxhat.dims(), dxhat.device());
        let mut dx = vec![0.0f32; dims[0] * dims[1]];
        with_slice(dxhat, |g| {
            with_slice(xhat, |xh| {
                with_slice(rstd, |r| self.rows().backward(self.isa, g, xh, r, &mut dx))
            })
        });
        tensor(dx, dims, &device)
    }
}

fn tensor(values: Vec<f32>, dims: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, dims), device)
}
