//! The task an experiment trains on: its config and the data it generates.

use serde::{Deserialize, Serialize};

use crate::stream::StreamCollector;
use crate::{
    CodeExecConfig, DataError, LabelledStream, SequenceTaskConfig, SequenceTaskKind, Split, Vocab,
};

/// Which generated task to train on, with its settings.
///
/// Serialised with a `task` tag, e.g. in TOML:
///
/// ```toml
/// [data]
/// task = "code_execution"   # or "copy", "reverse"
/// variables = 5
/// seed = 1
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum TaskConfig {
    /// The Feedback Transformer paper's code-execution task.
    CodeExecution(CodeExecConfig),
    /// Copy a random sequence after a separator.
    Copy(SequenceTaskConfig),
    /// Reverse a random sequence after a separator.
    Reverse(SequenceTaskConfig),
}

impl Default for TaskConfig {
    /// The 3-variable code-execution task of the paper.
    fn default() -> Self {
        Self::CodeExecution(CodeExecConfig::default())
    }
}

/// The generated splits of a task and the vocabulary that encodes them.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskData {
    /// Vocabulary of every input and label token of all three splits.
    pub vocab: Vocab,
    /// Training split.
    pub train: LabelledStream,
    /// Validation split.
    pub valid: LabelledStream,
    /// Test split.
    pub test: LabelledStream,
}

impl TaskData {
    /// The stream of `split`.
    pub fn split(&self, split: Split) -> &LabelledStream {
        match split {
            Split::Train => &self.train,
            Split::Valid => &self.valid,
            Split::Test => &self.test,
        }
    }
}

impl TaskConfig {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), DataError> {
        match self {
            Self::CodeExecution(config) => config.validate(),
            Self::Copy(config) | Self::Reverse(config) => config.validate(),
        }
    }

    /// The seed the data is generated from.
    pub fn seed(&self) -> u64 {
        match self {
            Self::CodeExecution(config) => config.seed,
            Self::Copy(config) | Self::Reverse(config) => config.seed,
        }
    }

    /// Validates, generates the three splits (each from its own [`Split::rng`] stream of the
    /// seed, examples concatenated in order) and builds the vocabulary over all their input and
    /// label tokens. Deterministic: the same config gives the same `TaskData`.
    pub fn build(&self) -> Result<TaskData, DataError> {
        self.validate()?;
        let mut collector = StreamCollector::default();
        match self {
            Self::CodeExecution(config) => {
                for split in Split::ALL {
                    collector.start_split();
                    config.examples(split).for_each(|ex| collector.push(&ex));
                }
            }
            Self::Copy(config) | Self::Reverse(config) => {
                let kind = match self {
                    Self::Reverse(_) => SequenceTaskKind::Reverse,
                    _ => SequenceTaskKind::Copy,
                };
                let task = config.init(kind)?;
                for split in Split::ALL {
                    collector.start_split();
                    task.examples(split).for_each(|ex| collector.push(&ex));
                }
            }
        }
        let (vocab, streams) = collector.finish();
        let [train, valid, test]: [LabelledStream; 3] =
            streams.try_into().expect("one stream per split");
        Ok(TaskData {
            vocab,
            train,
            valid,
            test,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{END, NO_LABEL_ID, interpret};

    fn small_code() -> TaskConfig {
        TaskConfig::CodeExecution(CodeExecConfig {
            statements: 30,
            train_programs: 40,
            valid_programs: 10,
            test_programs: 10,
            seed: 3,
            ..CodeExecConfig::default()
        })
    }

    #[test]
    fn build_is_deterministic_and_seeded() {
        let a = small_code().build().unwrap();
        assert_eq!(a, small_code().build().unwrap());
        let TaskConfig::CodeExecution(config) = small_code() else {
            unreachable!()
        };
        let b = TaskConfig::CodeExecution(CodeExecConfig { seed: 4, ..config })
            .build()
            .unwrap();
        assert_ne!(a.train, b.train);
        assert_ne!(a.train.inputs[..a.valid.len()], a.valid.inputs[..]);
        assert_ne!(a.valid, a.test);
    }

    #[test]
    fn code_execution_splits_decode_to_interpretable_programs() {
        let data = small_code().build().unwrap();
        let vocab = &data.vocab;
        assert_eq!(vocab.id(crate::NO_LABEL), Some(NO_LABEL_ID));
        for (split, programs) in [(Split::Train, 40), (Split::Valid, 10), (Split::Test, 10)] {
            let stream = data.split(split);
            let inputs = vocab.decode(&stream.inputs).unwrap();
            let targets = vocab.decode(&stream.targets).unwrap();
            assert_eq!(inputs.iter().filter(|&&t| t == END).count(), programs);
            assert_eq!(interpret(&inputs).unwrap(), targets);
            assert!(stream.scored_positions() > 0);
            assert_eq!(
                stream.scored_positions(),
                inputs.iter().filter(|&&t| t == "print").count()
            );
        }
    }

    #[test]
    fn copy_and_reverse_build() {
        let config = SequenceTaskConfig {
            symbols: 4,
            min_len: 2,
            max_len: 5,
            train_sequences: 30,
            valid_sequences: 5,
            test_sequences: 5,
            seed: 0,
        };
        let copy = TaskConfig::Copy(config.clone()).build().unwrap();
        let reverse = TaskConfig::Reverse(config).build().unwrap();
        assert_eq!(copy.vocab.tokens(), ["_", "0", "1", "2", "3", "END", "|"]);
        // Same sequences, different answers.
        assert_eq!(copy.vocab, reverse.vocab);
        assert_ne!(copy.train, reverse.train);
        assert_eq!(copy.train.len(), reverse.train.len());
        assert_eq!(
            copy.train.scored_positions(),
            reverse.train.scored_positions()
        );
    }

    #[test]
    fn serde_tagged_with_defaults_and_unknown_fields_rejected() {
        let config: TaskConfig =
            serde_json::from_str(r#"{"task": "code_execution", "variables": 5}"#).unwrap();
        assert_eq!(
            config,
            TaskConfig::CodeExecution(CodeExecConfig {
                variables: 5,
                ..Default::default()
            })
        );
        let config: TaskConfig = serde_json::from_str(r#"{"task": "reverse"}"#).unwrap();
        assert_eq!(config, TaskConfig::Reverse(SequenceTaskConfig::default()));
        let json = serde_json::to_string(&small_code()).unwrap();
        assert!(json.starts_with(r#"{"task":"code_execution","#), "{json}");
        assert_eq!(
            serde_json::from_str::<TaskConfig>(&json).unwrap(),
            small_code()
        );

        let err =
            serde_json::from_str::<TaskConfig>(r#"{"task": "copy", "variables": 3}"#).unwrap_err();
        assert!(err.to_string().contains("variables"), "{err}");
        assert!(serde_json::from_str::<TaskConfig>(r#"{"task": "sort"}"#).is_err());
    }

    #[test]
    fn toml_section_parses_and_rejects_unknown_fields() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Experiment {
            data: TaskConfig,
        }
        let text = "[data]\ntask = \"code_execution\"\nvariables = 5\nseed = 7\n";
        let experiment: Experiment = toml::from_str(text).unwrap();
        let expected = CodeExecConfig {
            variables: 5,
            seed: 7,
            ..CodeExecConfig::default()
        };
        assert_eq!(experiment.data, TaskConfig::CodeExecution(expected));
        let text = "[data]\ntask = \"copy\"\nmin_len = 4\nmax_len = 4\n";
        let experiment: Experiment = toml::from_str(text).unwrap();
        assert_eq!(experiment.data.seed(), 0);
        let err = toml::from_str::<Experiment>("[data]\ntask = \"copy\"\nmin_length = 4\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("min_length"), "{err}");
    }

    #[test]
    fn invalid_variables_rejected_naming_the_field() {
        let config: TaskConfig =
            serde_json::from_str(r#"{"task": "code_execution", "variables": 4}"#).unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(err.to_string(), "data.variables must be 3 or 5, got 4");
        assert_eq!(config.build().unwrap_err(), err);
    }
}
