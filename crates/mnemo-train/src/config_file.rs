//! What every experiment config file shares ([`ExperimentConfig`](crate::ExperimentConfig),
//! [`TranslationConfig`](crate::translation::TranslationConfig)), written once: loading and
//! printing, picking one model, and the [`Experiment`] view the trainer reads.
use std::collections::BTreeMap;

use crate::experiment::{OnNonFinite, RunConfig};
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
    /// What a step with a non-finite loss, gradient norm or weights does
    /// (`train.on_nonfinite`; stop unless the config says otherwise).
    fn on_nonfinite(&self) -> OnNonFinite {
        OnNonFinite::Stop
    }
}

/// Implements `load`, `from_toml_str`, `to_toml_string`, `model_names`, `for_model` and
/// [`Experiment`] for an experiment config type with a `validate(&self)` method and the fields
/// `run`, `optim`, `data`, `train` and `models` of types `RunConfig`, `OptimConfig`, `$data`,
/// `$train` (with an `on_nonfinite` field) and a map of `$model`; `$what` names the config in the (unreachable) serialisation
/// panic.
#[macro_export]
macro_rules! experiment_file {
    ($config:ty, $what:literal, $model:ty, $data:ty, $train:ty) => {
        impl $crate::config_file::Experiment for $config {
            type Model = $model;
            type Data = $data;
            type Train = $train;
            fn run(&self) -> &$crate::experiment::RunConfig {
                &self.run
            }
            fn optim(&self) -> &$crate::optim::OptimConfig {
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
            fn on_nonfinite(&self) -> $crate::experiment::OnNonFinite {
                self.train.on_nonfinite
            }
        }

        impl $config {
            /// Read, parse and validate a config file; every error names `path`.
            pub fn load(
                path: impl AsRef<std::path::Path>,
            ) -> Result<Self, $crate::experiment::ConfigError> {
                $crate::experiment::load_file(path.as_ref(), Self::from_toml_str)
            }

            /// Parse and validate a config from TOML text.
            pub fn from_toml_str(text: &str) -> Result<Self, $crate::experiment::ConfigError> {
                let config: Self = $crate::experiment::parse_toml(text)?;
                config.validate()?;
                Ok(config)
            }

            /// The config as TOML (what `config.toml` in a run directory holds).
            pub fn to_toml_string(&self) -> String {
                $crate::config_file::to_toml(self, $what)
            }

            /// Names of the models, in order.
            pub fn model_names(&self) -> Vec<String> {
                self.models.keys().cloned().collect()
            }

            /// The config of a single run: only model `name`, with its vocabulary size set.
            pub fn for_model(
                &self,
                name: &str,
                vocab_size: usize,
            ) -> Result<Self, $crate::experiment::ConfigError> {
                Ok(Self {
                    models: $crate::model_table::single_model(&self.models, name, vocab_size)?,
                    ..self.clone()
                })
            }
        }
    };
}

/// `config` as TOML (for [`experiment_file!`]); `what` names the config in the panic.
pub fn to_toml<T: serde::Serialize>(config: &T, what: &str) -> String {
    toml::to_string(config).unwrap_or_else(|e| panic!("{what} configs serialise to TOML: {e}"))
}
