//! AdamW whose update runs as one pass per parameter on CPU backends.
//!
//! [`HostAdamW`] is burn's `AdamW` (the same state type, so the same checkpoint records, and the
//! same `f32` arithmetic) with its step replaced where the parameter lives in host memory
//! (`mnemo_backend::runs_on_host`): the parameter, gradient and both moments are read as host
//! slices and updated in place by [`mnemo_kernels::adamw_update`], instead of ten tensor
//! operations each allocating a new buffer. Elsewhere (GPU backends, other float types) it
//! calls burn's `AdamW`. The tests below check that both give the same weights bit for bit,
//! and that either one's saved state resumes in the other.
use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use mnemo_kernels::{AdamWStep, adamw_update};

/// Adam with decoupled weight decay; see the [module docs](self).
#[derive(Clone)]
pub struct HostAdamW {
    /// burn's optimizer with the same settings (the path off the host).
    burn: AdamW,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
}

impl HostAdamW {
    /// AdamW with moment decays `beta1`, `beta2`, `eps` and decoupled weight decay
    /// `weight_decay` (0 = Adam).
    pub fn new(beta1: f32, beta2: f32, eps: f32, weight_decay: f32) -> Self {
        let burn = AdamWConfig::new()
            .with_beta_1(beta1)
            .with_beta_2(beta2)
            .with_epsilon(eps)
            .with_weight_decay(weight_decay)
            .build();
        Self {
            burn,
            beta1,
            beta2,
            eps,
            weight_decay,
        }
    }
}

/// The `f32` values of a parameter's data (`Tensor::into_data`: no copy when the tensor is its
/// buffer's only owner).
fn values(data: &mut TensorData) -> &mut [f32] {
    data.as_mut_slice::<f32>()
        .expect("an f32 parameter reads back as f32")
}

impl Optimizer for HostAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let device = tensor.device();
        if !mnemo_backend::runs_on_host(&device)
            || tensor.dtype() != DType::F32
            || grad.dtype() != DType::F32
            || state
                .as_ref()
                .is_some_and(|s| s.momentum.max_moment_2.is_some())
        {
            return self.burn.step(lr, tensor, grad, state);
        }
        let shape = tensor.shape();
        let n = shape.num_elements();
        let (time, m, v) = match state {
            Some(s) => {
                let momentum = s.momentum;
                (
                    momentum.time + 1,
                    momentum.moment_1.into_data(),
                    momentum.moment_2.into_data(),
                )
            }
            None => (
                1,
                TensorData::new(vec![0f32; n], shape.clone()),
                TensorData::new(vec![0f32; n], shape.clone()),
            ),
        };
        let (mut p, g, mut m, mut v) = (tensor.into_data(), grad.into_data(), m, v);
        let decay_rate = lr * self.weight_decay as f64;
        let step = AdamWStep {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            time,
            lr: lr as f32,
            keep: (decay_rate != 0.0).then_some((1.0 - decay_rate) as f32),
        };
        let g = g
            .as_slice::<f32>()
            .expect("an f32 gradient reads back as f32");
        adamw_update(values(&mut p), g, values(&mut m), values(&mut v), &step);
        let tensor = |data: TensorData| Tensor::<D>::from_data(data, &device);
        let momentum = AdaptiveMomentumState {
            time,
            moment_1: tensor(m),
            moment_2: tensor(v),
            max_moment_2: None,
        };
        (tensor(p), Some(AdamWState { momentum }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
    use burn::tensor::Tensor;
    use mnemo_core::host::parameters;

    use super::HostAdamW;

    #[derive(Module, Debug)]
    struct Two {
        first: Linear,
        second: Linear,
    }

    fn grads(model: &Two, seed: u64) -> GradientsParams {
        let device = model.first.weight.device();
        let x = mnemo_core::seeded::normal([4, 256], seed, &device);
        let y: Tensor<2> = model.second.forward(model.first.forward(x).tanh());
        GradientsParams::from_grads(y.powi_scalar(2).sum().backward(), model)
    }

    /// Three steps of burn's AdamW and of [`HostAdamW`] (weight decay on, one weight large
    /// enough to split over two threads) give the same weights bit for bit; after step 2 each
    /// optimizer's saved state is loaded into the other kind, and step 3 still agrees (the
    /// records are the same format).
    #[test]
    fn host_update_is_burns_adamw_and_resumes_across() {
        let device = mnemo_backend::test_device().autodiff();
        let model = Two {
            first: LinearConfig::new(256, 300).init(&device),
            second: LinearConfig::new(300, 5).init(&device),
        };
        let (beta1, beta2, eps, decay) = (0.9, 0.98, 1e-8, 0.05);
        let host = || ModuleOptimizer::from(HostAdamW::new(beta1, beta2, eps, decay));
        let burn = || {
            AdamWConfig::new()
                .with_beta_1(beta1)
                .with_beta_2(beta2)
                .with_epsilon(eps)
                .with_weight_decay(decay)
                .init()
        };
        let start = parameters(&model);
        let (mut a, mut b) = (model.clone(), model);
        let (mut opt_a, mut opt_b) = (host(), burn());
        for step in 1..=3u64 {
            if step == 3 {
                let (bytes_a, bytes_b) = (opt_a.into_bytes().unwrap(), opt_b.into_bytes().unwrap());
                opt_a = host().from_bytes(bytes_b).unwrap();
                opt_b = burn().from_bytes(bytes_a).unwrap();
            }
            let (ga, gb) = (grads(&a, step), grads(&b, step));
            a = opt_a.step(1e-2, a, ga);
            b = opt_b.step(1e-2, b, gb);
            let (pa, pb) = (parameters(&a), parameters(&b));
            assert!(pa == pb, "step {step}: the weights differ");
        }
        assert!(parameters(&a) != start, "the weights moved");
    }
}
