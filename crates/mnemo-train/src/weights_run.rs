//! Runs in and out of safetensors: `mnemo export RUN --format safetensors` writes a trained run's
//! weights ([`export_run`]); `mnemo import safetensors FILE --config CONFIG.toml --out RUN` makes
//! a run directory from a file ([`import_run`]) that `mnemo eval`, `mnemo generate` and
//! `mnemo train --resume` accept.
//!
//! The weights are those of Vaswani et al. 2017 (Transformer LM), Fan et al. 2020 (Feedback
//! Transformer) and Dai et al. 2019 (Transformer-XL) as stored by [`crate::weights`]: names and
//! layouts of a plain PyTorch implementation (docs/models.md, "Weights in PyTorch").
//!
//! An exported file carries the model's config as metadata (`mnemo.kind`, `mnemo.config`:
//! the `[models.<name>]` table as JSON, `mnemo.step`), so a reader needs nothing else to build
//! the model, and an import refuses a file written for another config, naming the fields that
//! differ (sizes alone would not catch e.g. `n_heads` with the same width, or `memory`).
//!
//! An imported run is a run at step 0 whose weights are the file's: `config.toml` (the resolved
//! single-model config), `vocab.json` and a checkpoint with the data position at the start and
//! fresh optimizer moments. Resuming it trains from those weights for `run.steps` steps.
use std::path::Path;

use burn::tensor::Device;
use mnemo_models::{Model, ModelConfig};
use serde_json::Value;

use crate::checkpoint::Checkpoint;
use crate::config_file::Experiment;
use crate::error::TrainError;
use crate::evaluate::LoadedRun;
use crate::experiment::ExperimentConfig;
use crate::fingerprint::fingerprint_files;
use crate::lm::{LmTask, TrainerState};
use crate::model_table::ModelEntry;
use crate::run_dir::RunDir;
use crate::run_lock::RunLock;
use crate::task::Task;
use crate::weights::{
    Problem, WeightsError, export_safetensors, import_safetensors, read_metadata,
};

/// Metadata key of the model kind (`transformer`, `feedback`, `transformer_xl`).
pub const KIND_KEY: &str = "mnemo.kind";
/// Metadata key of the model's config, the `[models.<name>]` table as JSON.
pub const CONFIG_KEY: &str = "mnemo.config";
/// Metadata key of the training step the weights are from.
pub const STEP_KEY: &str = "mnemo.step";

/// The metadata an exported file carries for a model of `config` at `step`.
pub fn model_metadata(config: &ModelConfig, step: u64) -> Vec<(&'static str, String)> {
    vec![
        (KIND_KEY, config.kind().to_string()),
        (
            CONFIG_KEY,
            serde_json::to_string(config).expect("model configs serialise"),
        ),
        (STEP_KEY, step.to_string()),
    ]
}

/// Write the weights of the reloaded `run` to `path` (see [`crate::weights`]), with
/// [`model_metadata`].
pub fn export_run(run: &LoadedRun, path: &Path) -> Result<(), WeightsError> {
    export_safetensors(
        &run.model,
        path,
        &model_metadata(&run.model_config, run.trainer.step),
    )
}

/// A model of `config` on `device` with the weights of the safetensors file at `path`. Refused,
/// naming the fields, if the file's `mnemo.config` metadata (when it has one) is another config.
pub fn import_model(
    config: &ModelConfig,
    path: &Path,
    device: &Device,
) -> Result<Model, WeightsError> {
    check_config(config, path)
        .and_then(|()| import_safetensors(ModelEntry::init(config, device), path))
}

/// Refuse a file whose `mnemo.config` metadata differs from `config`, naming each field.
fn check_config(config: &ModelConfig, path: &Path) -> Result<(), WeightsError> {
    let metadata = read_metadata(path)?;
    let Some(saved) = metadata.get(CONFIG_KEY) else {
        return Ok(()); // written by another program: the tensors alone are checked
    };
    let bad = |reason: String| WeightsError {
        path: path.to_path_buf(),
        problems: vec![Problem::Config(reason)],
    };
    let saved: Value = serde_json::from_str(saved)
        .map_err(|e| bad(format!("metadata `{CONFIG_KEY}` is not JSON: {e}")))?;
    let wanted = serde_json::to_value(config).expect("model configs serialise");
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let keys: std::collections::BTreeSet<String> = [&saved, &wanted]
        .iter()
        .filter_map(|v| v.as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    let differ: Vec<String> = keys
        .iter()
        .filter(|k| field(&saved, k) != field(&wanted, k))
        .map(|k| {
            format!(
                "{k} = {} in the file, {} in the config",
                field(&saved, k),
                field(&wanted, k)
            )
        })
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(bad(format!(
        "written for another model config ({CONFIG_KEY} metadata): {}",
        differ.join(", ")
    )))
}

/// What [`import_run`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRun {
    /// The new run directory.
    pub dir: RunDir,
    /// The model's name in the config.
    pub model_name: String,
    /// How many tensors were read.
    pub tensors: usize,
}

/// Make the run directory `out` for model `model_name` (or the config's only model) of
/// `config`, holding the weights of the safetensors file `file` read on `device`; see the
/// [module docs](self). Refused if `out` already holds a checkpoint.
pub fn import_run(
    file: &Path,
    config: &ExperimentConfig,
    model_name: Option<&str>,
    out: &Path,
    device: &Device,
) -> Result<ImportedRun, TrainError> {
    let name = model_of(config, model_name)?;
    write_imported_run(config, &name, out, device, |model_config, _| {
        Ok(import_model(model_config, file, device)?)
    })
}

/// The model `model_name` names in `config`, or its only model; an error names `--model`.
fn model_of(config: &ExperimentConfig, model_name: Option<&str>) -> Result<String, TrainError> {
    let names = config.model_names();
    match (model_name, names.as_slice()) {
        (Some(name), _) if names.iter().any(|n| n == name) => Ok(name.to_string()),
        (Some(name), _) => Err(TrainError::Flag {
            flag: format!("--model {name}"),
            reason: format!("the config has no such model; it has: {}", names.join(", ")),
        }),
        (None, [only]) => Ok(only.clone()),
        (None, _) => Err(TrainError::Flag {
            flag: "--model".into(),
            reason: format!(
                "the config has several models; name one of: {}",
                names.join(", ")
            ),
        }),
    }
}

/// Make the run directory `out` for model `name` of `config` whose weights `read` gives (from
/// the resolved model config and the data's vocabulary): config, vocabulary and a step-0
/// checkpoint with fresh optimizer moments. Refused if `out` already holds a checkpoint.
pub(crate) fn write_imported_run(
    config: &ExperimentConfig,
    name: &str,
    out: &Path,
    device: &Device,
    read: impl FnOnce(&ModelConfig, &mnemo_data::Vocab) -> Result<Model, TrainError>,
) -> Result<ImportedRun, TrainError> {
    let data = config
        .data
        .build()
        .map_err(|e| TrainError::data("preparing the data", e))?;
    let config = config.for_model(name, data.vocab.len())?;
    let model_config = config.models[name].clone();
    let model = read(&model_config, &data.vocab)?;
    let tensors = crate::weights::tensor_names(&model).len();

    let dir = RunDir::at(out);
    let lock = RunLock::acquire(&dir)?;
    if dir.checkpoint().is_file() {
        return Err(TrainError::RunExists {
            dir: dir.path().into(),
        });
    }
    let task = LmTask::new(&config, data, device)?;
    let position = task.position(&task.start(&model));
    let mut state = TrainerState::new(
        name,
        model_config,
        config.data.clone(),
        config.train.clone(),
        config.run.seed,
        position,
    );
    state.data_files = fingerprint_files(&task.data_files())?;
    std::fs::write(dir.config(), config.toml())
        .map_err(|e| TrainError::io(dir.config(), "cannot write", e))?;
    task.write_files(&dir)?;
    let path = dir.checkpoint();
    Checkpoint::of(&path, state, &model, &config.optim.init())?.write_atomic(&path)?;
    drop(lock);
    Ok(ImportedRun {
        dir,
        model_name: name.to_string(),
        tensors,
    })
}
