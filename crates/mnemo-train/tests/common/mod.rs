//! Helpers shared by the integration tests: tiny configs, parameter dumps.
#![allow(dead_code)]

use burn::tensor::Device;
use mnemo_train::{ExperimentConfig, TrainOptions};

/// A tiny experiment: code execution with 10-statement programs, both model kinds.
///
/// `run` is inserted into `[run]` after the name (e.g. `"steps = 6\ncheckpoint_every = 3"`).
pub fn tiny_toml(run: &str, lr: f64, dropout: f64) -> String {
    format!(
        r#"
[run]
name = "t"
seed = 5
{run}

[data]
task = "code_execution"
statements = 10
train_programs = 50
valid_programs = 10
test_programs = 10
seed = 2

[train]
batch_size = 4
segment_len = 16

[optim]
lr = {lr:e}
warmup_steps = 2
grad_clip = 1.0

[models.feedback]
kind = "feedback"
d_model = 32
n_layers = 2
n_heads = 2
d_ff = 64
span = 8
dropout = {dropout}

[models.transformer]
kind = "transformer"
d_model = 32
n_layers = 2
n_heads = 2
d_ff = 64
span = 16
dropout = {dropout}
"#
    )
}

/// Parse a config that must be valid.
pub fn config(text: &str) -> ExperimentConfig {
    ExperimentConfig::from_toml_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The CPU device runs are trained on and reloaded onto.
pub fn cpu() -> Device {
    mnemo_backend::device("cpu").unwrap()
}

/// Train the model `name` of `config` with `opts`, then load the run it wrote
/// (`<out_dir>/<run.name>/<name>/`) back onto the CPU.
pub fn trained(
    config: &ExperimentConfig,
    name: &str,
    opts: &TrainOptions,
) -> mnemo_train::LoadedRun {
    mnemo_train::train(config, name, opts).unwrap_or_else(|e| panic!("training {name}: {e}"));
    let dir = opts.out_dir.join(&config.run.name).join(name);
    mnemo_train::load_run(&dir, &cpu()).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Quiet options training into `out` on the CPU.
pub fn options(out: &std::path::Path) -> TrainOptions {
    TrainOptions {
        quiet: true,
        ..TrainOptions::new(out, cpu())
    }
}

/// The error of `result`, which must fail, as text naming each of `names`.
pub fn error_naming<T: std::fmt::Debug, E: std::fmt::Display>(
    result: Result<T, E>,
    names: &[&str],
) -> String {
    let msg = match result {
        Ok(value) => panic!("expected an error naming {names:?}, got {value:?}"),
        Err(e) => e.to_string(),
    };
    for name in names {
        assert!(msg.contains(name), "`{name}` not named: {msg}");
    }
    msg
}

/// [`options`] that resume the runs already in `out`.
pub fn resume_options(out: &std::path::Path) -> TrainOptions {
    TrainOptions {
        resume: true,
        ..options(out)
    }
}

/// Every float parameter of a module, flattened in visiting order.
#[allow(unused_imports)]
pub use mnemo_core::host::parameters;

/// Largest absolute difference of two equally long slices.
#[allow(unused_imports)]
pub use mnemo_core::host::max_abs_diff;
