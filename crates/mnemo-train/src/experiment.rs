//! The experiment config: one TOML file naming the run, the data, the training and optimizer
//! settings, and one or more models trained one after another on the same data.
//!
//! ```toml
//! [run]
//! name = "smoke"
//! seed = 1
//! steps = 30
//! eval_every = 15        # 0 = only at the end
//! checkpoint_every = 15  # 0 = only at the end
//! log_every = 5
//!
//! [data]
//! task = "code_execution"
//! statements = 10
//! train_programs = 50
//! valid_programs = 10
//! test_programs = 10
//! seed = 1
//!
//! [train]
//! batch_size = 4
//! segment_len = 16
//!
//! [optim]
//! lr = 3e-3
//! warmup_steps = 5
//! grad_clip = 1.0
//!
//! [models.feedback]
//! kind = "feedback"
//! d_model = 32
//! n_layers = 2
//! n_heads = 2
//! d_ff = 64
//! span = 8
//! ```
//!
//! Every field is checked on load: unknown fields are rejected, ranges validated, and each
//! error names the file, the field (`optim.lr`, `models.feedback.d_model`) and, when known,
//! the line.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use mnemo_data::curriculum::STAGES_FIELD;
use mnemo_data::{CodeExecConfig, DataError, TaskConfig};
use mnemo_models::ModelConfig;
use serde::{Deserialize, Serialize};

use crate::experiment_file;
use crate::feedback_step::FeedbackBackward;
use crate::model_table::validate_models;
use crate::optim::OptimConfig;
use crate::toml_source;

/// A problem with an experiment config: where it is (file, line, field) and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file, when the config came from one.
    pub path: Option<PathBuf>,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// Dotted path of the offending field (`optim.lr`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error about `field`, not yet tied to a file.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: None,
            line: None,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Attach the file the config came from (and the line of the field, found in `text`).
    pub fn in_file(mut self, path: &Path, text: Option<&str>) -> Self {
        if self.line.is_none()
            && let (Some(text), Some(field)) = (text, &self.field)
        {
            self.line = toml_source::locate(text, field);
        }
        self.path = Some(path.to_path_buf());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line) {
            (Some(path), Some(line)) => write!(f, "{}:{line}: ", path.display())?,
            (Some(path), None) => write!(f, "{}: ", path.display())?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// `[run]`: naming, seeding and the cadence of logs, evaluations and checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Name of the run: its directory under `--out` (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Seed of model initialisation and dropout (the data has its own seed).
    pub seed: u64,
    /// Optimizer steps (one training segment each).
    pub steps: u64,
    /// Evaluate on the validation split every this many steps (0 = only at the end).
    #[serde(default)]
    pub eval_every: u64,
    /// Write a checkpoint every this many steps (0 = only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Log training metrics every this many steps (>= 1).
    #[serde(default = "default_log_every")]
    pub log_every: u64,
}

fn default_log_every() -> u64 {
    10
}

impl RunConfig {
    /// Check the name and the cadences; errors name the field (`run.steps`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_name("run.name", &self.name)?;
        if self.steps == 0 {
            return Err(ConfigError::field("run.steps", "must be at least 1"));
        }
        if self.log_every == 0 {
            return Err(ConfigError::field("run.log_every", "must be at least 1"));
        }
        Ok(())
    }
}

/// `[train]`: batch and segment sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Rows per batch; each row is a contiguous part of the training stream.
    pub batch_size: usize,
    /// Tokens per segment (the unit of one optimizer step and of truncated backpropagation).
    pub segment_len: usize,
    /// Rows per batch when evaluating (default: `batch_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_batch_size: Option<usize>,
    /// How Feedback models and Transformers get their gradients: `"manual"` (default: their
    /// hand-written exact backward, used when the model supports it, otherwise autodiff) or
    /// `"autodiff"`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub feedback_backward: FeedbackBackward,
    /// What a step with a non-finite loss, gradient norm or weights does: `"stop"` (default)
    /// or `"skip_batch"`. A policy, not part of the data position: a run may be resumed with
    /// another value.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_nonfinite: OnNonFinite,
}

/// `train.on_nonfinite`: what the trainer does when a step's loss, gradient norm or updated
/// weights are NaN or infinite. Either way nothing non-finite is ever written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNonFinite {
    /// Stop with an error naming the step and the last (finite) checkpoint, which is kept.
    #[default]
    Stop,
    /// Drop the batch: weights and optimizer moments stay as before it, the data moves on,
    /// the carried state restarts, and a `"split": "skipped"` line is logged.
    SkipBatch,
}

/// Keys of a `[train]` table that are policies rather than part of a run's identity: they
/// are not compared when a checkpoint is resumed.
pub const POLICY_KEYS: &[&str] = &["on_nonfinite"];

pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl TrainConfig {
    /// Rows per batch when evaluating.
    pub fn eval_batch_size(&self) -> usize {
        self.eval_batch_size.unwrap_or(self.batch_size)
    }
}

/// A whole experiment: see the [module docs](self) for an example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Naming, seed, cadence.
    pub run: RunConfig,
    /// The task and its generator settings.
    pub data: TaskConfig,
    /// Batch and segment sizes.
    pub train: TrainConfig,
    /// Optimizer and schedule.
    pub optim: OptimConfig,
    /// The models, by name; each is a separate run in `<out>/<run.name>/<model name>/`.
    pub models: BTreeMap<String, ModelConfig>,
}

impl ExperimentConfig {
    /// Check every range; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.run.validate()?;
        let train = &self.train;
        if train.batch_size == 0 {
            return Err(ConfigError::field("train.batch_size", "must be at least 1"));
        }
        if train.segment_len == 0 {
            return Err(ConfigError::field(
                "train.segment_len",
                "must be at least 1",
            ));
        }
        if train.eval_batch_size == Some(0) {
            return Err(ConfigError::field(
                "train.eval_batch_size",
                "must be at least 1",
            ));
        }
        self.optim.validate()?;
        self.data.validate().map_err(data_error)?;
        self.validate_curriculum()?;
        validate_models(&self.models, "feedback", 1)
    }

    /// A curriculum's stages against `[run]`: stages that end on accuracy need scheduled
    /// validations, and stages that end on steps must leave steps for the final length.
    fn validate_curriculum(&self) -> Result<(), ConfigError> {
        let TaskConfig::CodeExecution(CodeExecConfig {
            curriculum: Some(curriculum),
            ..
        }) = &self.data
        else {
            return Ok(());
        };
        let (steps, run_steps) = (curriculum.steps(), self.run.steps);
        match curriculum.advance_at_accuracy {
            Some(_) if self.run.eval_every == 0 => Err(ConfigError::field(
                "data.curriculum.advance_at_accuracy",
                "needs run.eval_every: a stage ends on accuracy only at a scheduled validation",
            )),
            None if steps >= run_steps => Err(ConfigError::field(
                STAGES_FIELD,
                format!(
                    "the stages take {steps} of the run's {run_steps} steps (run.steps): it \
                     would never train on programs of data.statements statements"
                ),
            )),
            _ => Ok(()),
        }
    }
}

experiment_file!(
    ExperimentConfig,
    "experiment",
    ModelConfig,
    TaskConfig,
    TrainConfig
);

/// Read the config file at `path` and `parse` it; every error names `path` (and the line of
/// the field, when known).
pub fn load_file<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: Some(path.to_path_buf()),
        line: None,
        field: None,
        message: match e.kind() {
            std::io::ErrorKind::NotFound => "config file not found".to_string(),
            _ => format!("cannot read config file: {e}"),
        },
    })?;
    parse(&text).map_err(|e| e.in_file(path, Some(&text)))
}

/// Deserialise TOML text; the error names the line and the field.
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    toml_source::parse(text).map_err(|located| ConfigError {
        path: None,
        line: located.line,
        field: located.field,
        message: located.message,
    })
}

/// A data validation error as a config error.
pub(crate) fn data_error(error: DataError) -> ConfigError {
    match error {
        DataError::InvalidConfig { field, reason } => ConfigError::field(field, reason),
        other => ConfigError::field("data", other.to_string()),
    }
}

/// Names become directory names: keep them to a safe alphabet.
pub fn check_name(field: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::field(
            field,
            format!("`{name}` must be non-empty and use only letters, digits, `-`, `_` and `.`"),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The smoke preset (`experiments/smoke/tiny.toml`: both model kinds at tiny sizes, the
    /// feedback model last), the example config the tests edit.
    pub(crate) const EXAMPLE: &str = include_str!("../../../experiments/smoke/tiny.toml");

    /// The 1-based line of `EXAMPLE` that starts with `text`.
    fn line_of(text: &str) -> usize {
        1 + EXAMPLE
            .lines()
            .position(|l| l.starts_with(text))
            .unwrap_or_else(|| panic!("no `{text}` line"))
    }

    fn err(text: &str) -> String {
        ExperimentConfig::from_toml_str(text)
            .unwrap_err()
            .in_file(Path::new("x.toml"), Some(text))
            .to_string()
    }

    #[test]
    fn example_parses_and_round_trips() {
        let config = ExperimentConfig::from_toml_str(EXAMPLE).unwrap();
        assert_eq!(config.train.eval_batch_size(), 4);
        assert_eq!(config.optim.beta2, 0.999);
        let back = ExperimentConfig::from_toml_str(&config.to_toml_string()).unwrap();
        assert_eq!(back, config);
        let single = config.for_model("feedback", 23).unwrap();
        assert_eq!(single.models["feedback"].vocab_size(), 23);
        let text = single.to_toml_string();
        assert_eq!(ExperimentConfig::from_toml_str(&text).unwrap(), single);
        assert!(
            config
                .for_model("nope", 3)
                .unwrap_err()
                .to_string()
                .contains("feedback")
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let msg = err(&EXAMPLE.replace("lr = 3e-3", "lr = 3e-3\nlearning_rate = 1"));
        let at = format!("x.toml:{}: ", line_of("lr = 3e-3") + 1);
        assert!(
            msg.starts_with(&(at + "optim.learning_rate: unknown field `learning_rate`")),
            "{msg}"
        );
        let msg = err(&EXAMPLE.replace("batch_size = 4", "batch_size = \"four\""));
        let at = format!("x.toml:{}: ", line_of("batch_size = 4"));
        assert!(
            msg.starts_with(&(at + "train.batch_size: invalid type")),
            "{msg}"
        );
        let feedback = "[models.feedback]\nkind = \"feedback\"\nd_model = 32";
        let msg = err(&EXAMPLE.replace(feedback, &feedback.replace("32", "\"big\"")));
        let at = format!("x.toml:{}: ", line_of("[models.feedback]") + 2);
        assert!(
            msg.starts_with(&(at + "models.feedback.d_model: invalid type")),
            "{msg}"
        );
        let msg = err(&EXAMPLE.replace("statements = 10", "statements = 10\nvariablez = 3"));
        assert!(msg.contains("data.variablez: unknown field"), "{msg}");
    }

    #[test]
    fn ranges_are_checked() {
        for (from, to, field) in [
            ("lr = 3e-3", "lr = 0.0", "optim.lr"),
            ("steps = 12", "steps = 0", "run.steps"),
            ("batch_size = 4", "batch_size = 0", "train.batch_size"),
            ("segment_len = 16", "segment_len = 0", "train.segment_len"),
            ("log_every = 3", "log_every = 0", "run.log_every"),
            ("n_heads = 2", "n_heads = 3", "models.feedback.n_heads"),
            ("name = \"smoke-tiny\"", "name = \"a/b\"", "run.name"),
            ("variables = 3", "variables = 4", "data.variables"),
        ] {
            assert!(EXAMPLE.contains(from), "{from}");
            let text = EXAMPLE.replace(from, to);
            let e = ExperimentConfig::from_toml_str(&text).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            let msg = e.in_file(Path::new("x.toml"), Some(&text)).to_string();
            assert!(msg.starts_with("x.toml:"), "{msg}");
        }
        let no_models = EXAMPLE.split("[models.").next().unwrap().to_string() + "[models]\n";
        let e = ExperimentConfig::from_toml_str(&no_models).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("models"));
    }

    #[test]
    fn curriculum_parses_and_its_errors_name_file_line_and_field() {
        let with = |stages: &str, extra: &str| {
            EXAMPLE.replace(
                "seed = 1\n\n[train]",
                &format!("seed = 1\n\n[data.curriculum]\nstages = {stages}\n{extra}\n[train]"),
            )
        };
        let good = with(
            "[{ statements = 4, steps = 3 }, { statements = 6, steps = 3 }]",
            "",
        );
        let config = ExperimentConfig::from_toml_str(&good).unwrap();
        let TaskConfig::CodeExecution(data) = &config.data else {
            panic!("code execution")
        };
        let curriculum = data.curriculum.as_ref().unwrap();
        assert_eq!(
            (curriculum.steps(), curriculum.describe(10).as_str()),
            (6, "4 → 6 → 10")
        );
        let back = ExperimentConfig::from_toml_str(&config.to_toml_string()).unwrap();
        assert_eq!(back, config);
        // A plain integer, as before.
        let plain = ExperimentConfig::from_toml_str(EXAMPLE).unwrap();
        assert!(matches!(&plain.data, TaskConfig::CodeExecution(c) if c.curriculum.is_none()));

        let stages_line =
            |text: &str| 1 + text.lines().position(|l| l.starts_with("stages")).unwrap();
        for (stages, extra, field, message) in [
            ("[]", "", "data.curriculum.stages", "lists no stage"),
            (
                "[{ statements = 4, steps = 3 }, { statements = 6, steps = 0 }]",
                "",
                "data.curriculum.stages",
                "stage 2 (CurriculumStage { statements: 6, steps: 0 }): steps must be at least 1",
            ),
            (
                "[{ statements = 6, steps = 3 }, { statements = 4, steps = 3 }]",
                "",
                "data.curriculum.stages",
                "statements must be more than the stage before (6)",
            ),
            (
                "[{ statements = 0, steps = 3 }]",
                "",
                "data.curriculum.stages",
                "statements must be more than data.variables (3)",
            ),
            (
                "[{ statements = 10, steps = 3 }]",
                "",
                "data.curriculum.stages",
                "the last stage has 10 statements, not fewer than data.statements (10)",
            ),
            (
                "[{ statements = 4, steps = 6 }, { statements = 6, steps = 6 }]",
                "",
                "data.curriculum.stages",
                "the stages take 12 of the run's 12 steps (run.steps)",
            ),
            (
                "[{ statements = 4, steps = 3 }]",
                "advance_at_accuracy = 1.5",
                "data.curriculum.advance_at_accuracy",
                "must be a fraction in (0, 1], got 1.5",
            ),
        ] {
            let text = with(stages, extra);
            let msg = err(&text);
            let line = match field {
                "data.curriculum.stages" => stages_line(&text),
                _ => stages_line(&text) + 1,
            };
            let at = format!("x.toml:{line}: {field}: ");
            assert!(
                msg.starts_with(&at) && msg.contains(message),
                "{msg}\n  expected {at}… {message}"
            );
        }
        // Ending stages on accuracy needs scheduled validations.
        let text = with(
            "[{ statements = 4, steps = 3 }]",
            "advance_at_accuracy = 0.5",
        )
        .replace("eval_every = 6", "eval_every = 0");
        let msg = err(&text);
        assert!(
            msg.contains("data.curriculum.advance_at_accuracy: needs run.eval_every"),
            "{msg}"
        );
        let msg = err(&with("[{ statements = 4, steps = 3, length = 2 }]", ""));
        assert!(msg.contains("unknown field `length`"), "{msg}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let msg = ExperimentConfig::load("/no/such/dir/exp.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "/no/such/dir/exp.toml: config file not found");
    }
}
