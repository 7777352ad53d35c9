//! What every experiment config file shares ([`ExperimentConfig`](crate::ExperimentConfig),
//! [`TranslationConfig`](crate::translation::TranslationConfig)), written once: loading and
//! printing, picking one model, and the [`Experiment`] view the trainer reads.
use std::collections::BTreeMap;

use crate::experiment::RunConfig;
use crate::model_table::ModelEntry;
use crate::optim::OptimConfig;
use crate::task::Saved;

/// The parts of an experiment config every run reads: `[run]`, `[optim]`, `[data]`, `[train]`
/// and the `[models]` table.
pub trait Experiment: Saved {
    /// One entry of the `[models]` table.
    type Model: ModelEntry + Saved;
    /// The `[data]` table.
    type Data: Saved;
    /// The `[train]` table.
    type Train: Saved;
    /// Naming, seed, cadence.
    fn run(&self) -> &RunConfig;
    /// Optimizer and schedule.
    fn optim(&self) -> &OptimConfig;
    /// The data.
    fn data(&self) -> &Self::Data;
    /// Batch sizes.
    fn train(&self) -> &Self::Train;
    /// The models, by name.
    fn models(&self) -> &BTreeMap<String, Self::Model>;
    /// The config as TOML.
    fn toml(&self) -> String;
}

/// Implements `load`, `from_toml_str`, `to_toml_string`, `model_names`, `for_model` and
/// [`Experiment`] for an experiment config type with a `validate(&self)` method and the fields
/// `run`, `optim`, `data`, `train` and `models` of types `RunConfig`, `OptimConfig`, `$data`,
/// `$train` and a map of `$model`; `$what` names the config in the (unreachable) serialisation
/// panic.
macro_rules! experiment_file {
    ($config:ty, $what:literal, $model:ty, $data:ty, $train:ty) => {
        impl $crate::config_file::Experiment for $config {
            type Model = $model;
            type Data = $data;
            type Train = $train;
            fn run(&self) -> &RunConfig {
                &self.run
            }
            fn optim(&self) -> &OptimConfig {
                &self.optim
            }
            fn data(&self) -> &$data {
                &self.data
            }
            fn train(&self) -> &$train {
                &self.train
            }
            fn models(&self) -> &std::collections::BTreeMap<String, $model> {
                &self.models
            }
            fn toml(&self) -> String {
                self.to_toml_string()
            }
        }

        impl $config {
            /// Read, parse and validate a config file; every error names `path`.
            pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self, ConfigError> {
                $crate::experiment::load_file(path.as_ref(), Self::from_toml_str)
            }

            /// Parse and validate a config from TOML text.
            pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
                let config: Self = $crate::experiment::parse_toml(text)?;
                config.validate()?;
                Ok(config)
            }

            /// The config as TOML (what `config.toml` in a run directory holds).
            pub fn to_toml_string(&self) -> String {
                toml::to_string(self).expect(concat!($what, " configs serialise to TOML"))
            }

            /// Names of the models, in order.
            pub fn model_names(&self) -> Vec<String> {
                self.models.keys().cloned().collect()
            }

            /// The config of a single run: only model `name`, with its vocabulary size set.
            pub fn for_model(&self, name: &str, vocab_size: usize) -> Result<Self, ConfigError> {
                Ok(Self {
                    models: $crate::model_table::single_model(&self.models, name, vocab_size)?,
                    ..self.clone()
                })
            }
        }
    };
}

pub(crate) use experiment_file;
