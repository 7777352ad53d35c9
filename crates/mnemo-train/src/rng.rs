//! burn draws its random numbers (parameter initialisation, dropout masks) from one generator per
//! device, shared by the whole process. A run is reproducible only if nothing else draws between
//! its seeding and its draws, so every seeded section of mnemo goes through [`seeded`]: it holds
//! one process-wide lock while it seeds the device and runs the draws. Two trainers (or tests)
//! in one process then interleave whole sections, never draws, and need no lock of their own.
use std::sync::Mutex;

use burn::tensor::Device;

/// Seed `device` with `seed` and run `draws` with no other seeded section in between.
pub fn seeded<R>(device: &Device, seed: u64, draws: impl FnOnce() -> R) -> R {
    static RNG: Mutex<()> = Mutex::new(());
    let _only_us = RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    draws()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tensor};

    /// Threads drawing at the same time each get exactly the draws of their seed.
    #[test]
    fn concurrent_sections_draw_as_if_alone() {
        let device = mnemo_backend::test_device().inner();
        let draw = |seed: u64| {
            seeded(&device, seed, || {
                (0..20)
                    .flat_map(|_| {
                        Tensor::<1>::random([8], Distribution::Default, &device)
                            .into_data()
                            .try_to_vec::<f32>()
                            .unwrap()
                    })
                    .collect::<Vec<f32>>()
            })
        };
        let alone: Vec<Vec<f32>> = (0..4).map(draw).collect();
        let together: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|seed| s.spawn(move || draw(seed))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(alone, together);
        assert_ne!(alone[0], alone[1], "different seeds draw differently");
    }
}
