//! Runs one model step on several backends from the same weights and batch, and compares them.
//!
//! For a model of an experiment config, [`Problem::from_experiment`] initialises the weights
//! once (on the reference backend) and takes the first training segment as the batch; every
//! backend then loads those weights from bytes ([`Problem::load_model`]) and runs the trainer's
//! own step (`mnemo_train::LmStep`: forward, masked cross-entropy, gradients by the
//! hand-written Feedback backward or autodiff) and update (`mnemo_train::apply_update`: one
//! clipped AdamW step) ([`run_backend`]). Its
//! logits, loss and gradients are read back and measured against the reference backend's
//! ([`Agreement`], [`Diff`]: max |Δ| and L2 relative error), within a stated [`Tolerance`].
//! Optionally each backend is also timed: median training-step time after warm-up, and
//! generation speed ([`Timing`]).
//!
//! This is what `mnemo compare-backends` prints, and what the parity tests (`tests/parity.rs`,
//! one test per backend and architecture, run when the backend's feature is on) assert.
//!
//! ```no_run
//! use mnemo_compare::{Timing, Tolerance, compare};
//! use mnemo_train::ExperimentConfig;
//!
//! let config = ExperimentConfig::load("experiments/quickstart.toml")?;
//! let backends = mnemo_compare::default_backends();
//! let report = compare(&config, &config.model_names(), &backends, "cpu", Timing::default(),
//!     Tolerance::DEFAULT)?;
//! print!("{}", report.table());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod diff;
pub mod error;
pub mod problem;
pub mod report;
pub mod run;
pub mod tolerance;

pub use diff::Diff;
pub use error::CompareError;
pub use problem::Problem;
pub use report::{Agreement, Report, Row};
pub use run::{BackendRun, Speed, StepValues, Timing, run_backend, run_backend_caught};
pub use tolerance::Tolerance;

use mnemo_train::ExperimentConfig;

/// Every backend compiled into this build, once each: `cpu` first, then the others, leaving
/// out the one `cpu` stands for.
pub fn default_backends() -> Vec<String> {
    let cpu = mnemo_backend::resolve(mnemo_backend::DEFAULT_BACKEND);
    mnemo_backend::compiled_backends()
        .into_iter()
        .filter(|&name| {
            name == mnemo_backend::DEFAULT_BACKEND || mnemo_backend::resolve(name) != cpu
        })
        .map(str::to_string)
        .collect()
}

/// Compare `backends` against `reference` on each model of `models` in `config`.
///
/// Every name must be compiled in (checked before anything runs). A backend that panics
/// (no adapter, no driver) gets a failed row; the reference must run.
pub fn compare(
    config: &ExperimentConfig,
    models: &[String],
    backends: &[String],
    reference: &str,
    timing: Timing,
    tolerance: Tolerance,
) -> Result<Report, CompareError> {
    mnemo_backend::device(reference).map_err(|source| CompareError::Backend {
        flag: "--reference".into(),
        source,
    })?;
    for name in backends {
        mnemo_backend::device(name).map_err(|source| CompareError::Backend {
            flag: "--backends".into(),
            source,
        })?;
    }
    let mut rows = Vec::new();
    for model in models {
        let problem = Problem::from_experiment(config, model, reference)?;
        let reference_run = run_backend_caught(&problem, reference, timing)?;
        rows.push(Row::new(model, &reference_run, &reference_run, &tolerance));
        for backend in backends.iter().filter(|b| *b != reference) {
            rows.push(match run_backend_caught(&problem, backend, timing) {
                Ok(run) => Row::new(model, &run, &reference_run, &tolerance),
                Err(e) => Row::failed(model, backend, &e.to_string()),
            });
        }
    }
    Ok(Report {
        reference: reference.to_string(),
        tolerance,
        timing,
        rows,
    })
}
