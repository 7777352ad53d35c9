//! Explicitly seeded parameters and tensors, with no process-wide generator.
//!
//! burn draws initial weights and random tensors from one generator per device
//! (`device.seed(n)`), shared by the whole process: tests that seed it and then initialise a
//! model in parallel interleave their draws, so their weights depend on scheduling. Here the
//! values depend only on an explicit seed: [`reinit`] redraws a module's parameters, [`normal`]
//! draws a data tensor, each from its own ChaCha8 stream.
//!
//! ```text
//! parameter i (visit order) ← U(-1/√fan_in, 1/√fan_in) from ChaCha8(seed, stream i)
//! ```
//!
//! The bound is that of burn's default `Linear` init (Kaiming uniform, gain 1/√3), with fan_in
//! the first dimension (burn's `[d_in, d_out]` weight layout; a vector's length). Parameters
//! whose values are all equal (norm gains and biases, zero mixing logits) are constant by
//! construction and kept, and so are parameters that are not trained on an autodiff device
//! (Performer's random features, drawn by their module). The per-module scales of a config's own init (e.g. a scaled output
//! projection) are not reproduced: this is for tests and experiments that need reproducible
//! weights, not a replacement of the configured init.
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::host::to_vec;

/// `module` with every non-constant float parameter redrawn from `(seed, parameter index)`.
///
/// Parameters are numbered in the module's visit order (its field order), constant ones
/// included, so the same seed gives the same weights to modules of the same structure, whatever
/// the device's generator did before, and from any thread. Parameter ids, devices, dtypes and
/// gradient requirements are kept.
pub fn reinit<M: Module>(module: M, seed: u64) -> M {
    module.map(&mut Reinit { seed, index: 0 })
}

/// A tensor of standard normal values drawn from `seed` (Box-Muller over a ChaCha8 stream).
pub fn normal<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let mut rng = stream(seed, 0);
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| {
            let u1 = 1.0 - unit(&mut rng) as f64; // (0, 1]: ln is finite
            let u2 = unit(&mut rng) as f64;
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The generator of stream `index` under `seed`.
fn stream(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// A uniform value in `[0, 1)` with 24 random bits.
fn unit(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32
}

/// The mapper behind [`reinit`].
struct Reinit {
    seed: u64,
    /// Index of the next float parameter.
    index: u64,
}

impl ModuleMapper for Reinit {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let mut rng = stream(self.seed, self.index);
        self.index += 1;
        param.map(|old| {
            if old.device().is_autodiff() && !old.is_require_grad() {
                // Not trained: drawn by its module (Performer's features). A plain device does
                // not keep the flag; redraw such modules after reinit there.
                return old;
            }
            let values = to_vec(old.clone());
            if values.windows(2).all(|w| w[0] == w[1]) {
                return old; // constant by construction (norm gains, biases, zero logits)
            }
            let shape = old.dims();
            let bound = 1.0 / (shape[0] as f32).sqrt();
            let fresh: Vec<f32> = (0..values.len())
                .map(|_| bound * (2.0 * unit(&mut rng) - 1.0))
                .collect();
            Tensor::<D>::from_data(TensorData::new(fresh, shape), (&old.device(), old.dtype()))
                .set_require_grad(old.is_require_grad())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct Toy {
        linear: Linear,
        wide: Linear,
        norm: LayerNorm,
        logits: Param<Tensor<1>>,
    }

    fn toy(device: &Device) -> Toy {
        Toy {
            linear: LinearConfig::new(8, 8).init(device),
            wide: LinearConfig::new(8, 32).init(device),
            norm: LayerNormConfig::new(8).init(device),
            logits: Initializer::Zeros.init([3], device),
        }
    }

    /// Every parameter's values, in visit order.
    fn weights(m: &Toy) -> Vec<Vec<f32>> {
        let mut out = vec![
            to_vec(m.linear.weight.val()),
            to_vec(m.linear.bias.as_ref().unwrap().val()),
        ];
        out.push(to_vec(m.wide.weight.val()));
        out.push(to_vec(m.wide.bias.as_ref().unwrap().val()));
        out.push(to_vec(m.norm.gamma.val()));
        out.push(to_vec(m.norm.beta.as_ref().unwrap().val()));
        out.push(to_vec(m.logits.val()));
        out
    }

    #[test]
    fn same_seed_same_weights_whatever_the_device_generator_did() {
        let device = mnemo_backend::test_device();
        device.seed(1);
        let a = weights(&reinit(toy(&device), 7));
        device.seed(2);
        let _ = Tensor::<1>::random([5], burn::tensor::Distribution::Default, &device);
        let b = weights(&reinit(toy(&device), 7));
        assert_eq!(a, b);
        let c = weights(&reinit(toy(&device), 8));
        for i in 0..4 {
            assert_ne!(a[i], c[i], "parameter {i} did not change with the seed");
        }
        // Two parameters of the same shape get different streams.
        assert_ne!(a[0][..8], a[2][..8]);
    }

    #[test]
    fn constant_parameters_are_kept_and_scales_follow_fan_in() {
        let device = mnemo_backend::test_device();
        let m = reinit(toy(&device), 3);
        let w = weights(&m);
        assert!(w[4].iter().all(|&g| g == 1.0), "norm gain changed");
        assert!(w[5].iter().all(|&b| b == 0.0), "norm bias changed");
        assert!(w[6].iter().all(|&l| l == 0.0), "zero logits changed");
        // fan_in 8 for the weights, the vector's length for the biases.
        for (i, fan) in [(0, 8.0f32), (1, 8.0), (2, 8.0), (3, 32.0)] {
            let bound = 1.0 / fan.sqrt();
            let max = w[i].iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(
                max <= bound && max > 0.5 * bound,
                "parameter {i}: max |w| {max}, bound {bound}"
            );
        }
        // Still a trainable parameter.
        assert!(m.linear.weight.val().is_require_grad());
    }

    #[test]
    fn parallel_threads_draw_what_one_thread_draws() {
        let device = mnemo_backend::test_device();
        let alone: Vec<_> = (0..4u64)
            .map(|seed| weights(&reinit(toy(&device), seed)))
            .collect();
        let threads: Vec<_> = (0..8u64)
            .map(|i| {
                let device = device.clone();
                std::thread::spawn(move || {
                    // Each thread also stirs the shared device generator.
                    device.seed(100 + i);
                    (i % 4, weights(&reinit(toy(&device), i % 4)))
                })
            })
            .collect();
        for t in threads {
            let (seed, got) = t.join().unwrap();
            assert_eq!(got, alone[seed as usize], "seed {seed}");
        }
    }

    #[test]
    fn normal_is_seeded_and_standard() {
        let device = mnemo_backend::test_device().inner();
        let a = to_vec(normal([100, 100], 5, &device));
        assert_eq!(a, to_vec(normal([100, 100], 5, &device)));
        assert_ne!(a, to_vec(normal([100, 100], 6, &device)));
        let n = a.len() as f64;
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "mean {mean}, variance {var}"
        );
    }
}
