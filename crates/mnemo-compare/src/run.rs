//! Running the compared step, and the timing benchmarks, on one backend.
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use mnemo_core::host::to_vec;
use mnemo_models::{Model, ModelState};
use mnemo_train::{GenerateConfig, LmBatch, LmStep, StepOutput, apply_update, generate};
use serde::Serialize;

use crate::error::CompareError;
use crate::problem::Problem;

/// How much timing to do besides the compared step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timing {
    /// Untimed training steps first (kernel compilation, autotuning, allocator warm-up).
    pub warmup: usize,
    /// Timed training steps; the reported time is their median.
    pub steps: usize,
    /// Tokens generated in the generation benchmark (0 skips it).
    pub gen_tokens: usize,
}

impl Timing {
    /// No timing at all: only the compared step (what parity tests need).
    pub const NONE: Timing = Timing {
        warmup: 0,
        steps: 0,
        gen_tokens: 0,
    };
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            warmup: 2,
            steps: 10,
            gen_tokens: 64,
        }
    }
}

/// What one backend computed for the compared step, read back to the host.
#[derive(Debug, Clone, PartialEq)]
pub struct StepValues {
    /// Logits of the segment, `[batch, len, vocab]` row-major.
    pub logits: Vec<f32>,
    /// The masked cross-entropy.
    pub loss: f64,
    /// Every parameter's gradient (before clipping), concatenated in the module's visiting
    /// order.
    pub grads: Vec<f32>,
    /// Every parameter after one optimizer step (clipped gradients, AdamW), same order.
    pub updated: Vec<f32>,
}

/// One backend's run: its values and, if asked for, its speed.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendRun {
    /// The backend name as given (e.g. `cpu`).
    pub backend: String,
    /// What it runs on ([`mnemo_backend::describe`]).
    pub device: String,
    /// The compared step's values.
    pub values: StepValues,
    /// Its speed, as far as measured.
    pub speed: Speed,
}

/// How fast one backend ran, as far as its [`Timing`] asked to measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Speed {
    /// Median wall time of a training step (forward, loss, backward, clipping, optimizer
    /// step, synchronised), in milliseconds; `None` without timed steps.
    pub step_ms: Option<f64>,
    /// Tokens per second of step-by-step generation with batch 1 (prompt and continuation,
    /// one `forward_step` and one read-back per token); `None` when not measured.
    pub gen_tokens_per_s: Option<f64>,
}

/// Run `problem` on backend `backend`: the compared step from the shared weights, then the
/// timed steps and the generation benchmark of `timing`.
///
/// A GPU backend without a usable adapter panics inside burn; see [`run_backend_caught`].
pub fn run_backend(
    problem: &Problem,
    backend: &str,
    timing: Timing,
) -> Result<BackendRun, CompareError> {
    let device =
        mnemo_backend::autodiff_device(backend).map_err(|source| CompareError::Backend {
            flag: "--backends".into(),
            source,
        })?;
    let description = mnemo_backend::describe(backend).map_err(|source| CompareError::Backend {
        flag: "--backends".into(),
        source,
    })?;
    let model = problem.load_model(backend, &device)?;
    let mut optimizer = problem.optim.init();
    let (values, mut model) = compared_step(problem, model, &mut optimizer, &device);

    let mut speed = Speed::default();
    if timing.steps > 0 {
        for _ in 0..timing.warmup {
            model = train_step(problem, model, &mut optimizer, &device, |_, _| {});
        }
        let mut times = Vec::with_capacity(timing.steps);
        for _ in 0..timing.steps {
            let started = Instant::now();
            model = train_step(problem, model, &mut optimizer, &device, |_, _| {});
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        speed.step_ms = Some(median(&mut times));
    }
    if timing.gen_tokens > 0 {
        let inference = model.valid();
        let plain = device.clone().inner();
        let config = GenerateConfig {
            max_new_tokens: timing.gen_tokens,
            temperature: 0.0,
            seed: 0,
        };
        // One short untimed run compiles the step kernels.
        let warm = GenerateConfig {
            max_new_tokens: 2,
            ..config
        };
        let failed = |e: mnemo_train::TrainError| CompareError::Failed {
            backend: backend.to_string(),
            message: e.to_string(),
        };
        generate(&inference, &problem.prompt, &warm, &plain).map_err(failed)?;
        let started = Instant::now();
        generate(&inference, &problem.prompt, &config, &plain).map_err(failed)?;
        let tokens = (problem.prompt.len() + timing.gen_tokens) as f64;
        speed.gen_tokens_per_s = Some(tokens / started.elapsed().as_secs_f64());
    }
    Ok(BackendRun {
        backend: backend.to_string(),
        device: description,
        values,
        speed,
    })
}

/// [`run_backend`], with a panic inside burn (no adapter, no driver, a missing library)
/// turned into [`CompareError::Failed`] so that the other backends still run.
pub fn run_backend_caught(
    problem: &Problem,
    backend: &str,
    timing: Timing,
) -> Result<BackendRun, CompareError> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_backend(problem, backend, timing)
    }));
    std::panic::set_hook(previous);
    result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into());
        let first_line = message.lines().next().unwrap_or_default();
        let message = match mnemo_backend::runtime_hint(backend) {
            Some(hint) => format!("{first_line}; {hint}"),
            None => first_line.to_string(),
        };
        Err(CompareError::Failed {
            backend: backend.to_string(),
            message,
        })
    })
}

/// The trainer's step and update from the shared weights, read back.
fn compared_step(
    problem: &Problem,
    model: Model,
    optimizer: &mut ModuleOptimizer,
    device: &Device,
) -> (StepValues, Model) {
    let mut seen = None;
    let model = train_step(problem, model, optimizer, device, |model, out| {
        let grads = Gather::grads(model, &out.grads);
        seen = Some((to_vec(out.logits.clone()), out.stats.loss, grads));
    });
    let (logits, loss, grads) = seen.expect("the step was inspected");
    let values = StepValues {
        logits,
        loss,
        grads,
        updated: Gather::params(&model),
    };
    (values, model)
}

/// One full training step on the shared batch, exactly as the trainer takes it
/// ([`LmStep`], then [`apply_update`]), from a fresh state, synchronised; `inspect` sees the
/// model and the step's output before the update.
fn train_step(
    problem: &Problem,
    model: Model,
    optimizer: &mut ModuleOptimizer,
    device: &Device,
    inspect: impl FnOnce(&Model, &StepOutput<ModelState>),
) -> Model {
    let batch = LmBatch {
        tokens: problem.inputs_on(device),
        targets: &problem.segment.targets,
        no_label: problem.no_label,
    };
    let state = model.init_state(problem.segment.batch, device);
    let out = LmStep::new(problem.backward).run(&model, batch, state);
    inspect(&model, &out);
    let (model, _norm) = apply_update(
        optimizer,
        model,
        out.grads,
        problem.lr,
        problem.optim.grad_clip,
    );
    // The update is lazy on GPU backends: wait for it so that it counts in this step.
    device.sync().expect("the device finishes the step");
    model
}

/// The median of `values` (the mean of the middle two for an even count).
///
/// # Panics
/// If `values` is empty.
pub fn median(values: &mut [f64]) -> f64 {
    assert!(!values.is_empty(), "median of nothing");
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n % 2 {
        1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Collects every float parameter (or its gradient), flattened, in visiting order.
struct Gather<'a> {
    grads: Option<&'a GradientsParams>,
    values: Vec<f32>,
}

impl Gather<'_> {
    /// Every parameter's gradient in `grads`; a parameter without one counts as zeros.
    fn grads(model: &Model, grads: &GradientsParams) -> Vec<f32> {
        let mut visitor = Gather {
            grads: Some(grads),
            values: Vec::new(),
        };
        model.visit(&mut visitor);
        visitor.values
    }

    /// Every parameter's value.
    fn params(model: &Model) -> Vec<f32> {
        let mut visitor = Gather {
            grads: None,
            values: Vec::new(),
        };
        model.visit(&mut visitor);
        visitor.values
    }
}

impl ModuleVisitor for Gather<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        match self.grads {
            None => self.values.extend(to_vec(value)),
            Some(grads) => match grads.get::<D>(param.id) {
                Some(grad) => self.values.extend(to_vec(grad)),
                None => self
                    .values
                    .extend(std::iter::repeat_n(0.0, value.shape().num_elements())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [7.0]), 7.0);
    }
}
