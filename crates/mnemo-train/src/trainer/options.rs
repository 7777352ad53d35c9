//! How a run is started ([`TrainOptions`]), and the seeding every step shares.
use std::path::PathBuf;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

/// How to run a training: where, on what device, and whether to continue a previous run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainOptions {
    /// Root of all runs; this run goes to `<out_dir>/<run.name>/<model name>/`.
    pub out_dir: PathBuf,
    /// The device to train on, opened by the caller (autodiff is switched on for training).
    pub device: Device,
    /// Continue from `checkpoint.mnemo` if the run directory has one.
    pub resume: bool,
    /// Show no progress at all.
    pub quiet: bool,
    /// Stop (with a checkpoint, an evaluation and a summary marked unfinished) after this step,
    /// as if interrupted; `None` trains all `run.steps`.
    pub stop_after: Option<u64>,
    /// Resume even when the data files differ from those the checkpoint was trained on
    /// (their new fingerprints are recorded); see [`fingerprint`](crate::fingerprint).
    pub allow_data_change: bool,
    /// Fine-tuning: a fresh run starts from the weights of the run in this directory
    /// ([`Task::init_from`](crate::task::Task::init_from)) instead of a random init.
    pub init_from: Option<PathBuf>,
}

impl TrainOptions {
    /// Train into `out_dir` on `device`, fresh, with progress shown.
    pub fn new(out_dir: impl Into<PathBuf>, device: Device) -> Self {
        Self {
            out_dir: out_dir.into(),
            device,
            resume: false,
            quiet: false,
            stop_after: None,
            allow_data_change: false,
            init_from: None,
        }
    }
}

/// The seed of step `step`'s random draws (dropout): a mix of the run seed and the step.
pub fn step_seed(seed: u64, step: u64) -> u64 {
    fn splitmix64(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    splitmix64(seed ^ splitmix64(step))
}

/// Draw every lazily initialised parameter now, in the module's visiting order.
///
/// burn initialises a parameter at its first use; without this, the initial weights would
/// depend on the order in which the first training step touches them (which differs between
/// the autodiff and the hand-written Feedback backward), and on the step's reseeding.
pub fn initialize_params<M: Module>(model: M) -> M {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_seeds_differ_by_step_and_seed() {
        let a: Vec<u64> = (1..100).map(|s| step_seed(7, s)).collect();
        let mut dedup = a.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), a.len());
        assert_ne!(step_seed(7, 1), step_seed(8, 1));
        assert_eq!(step_seed(7, 5), step_seed(7, 5));
    }
}
