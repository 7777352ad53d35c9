//! The task an experiment trains on: its config and the data it generates.

use serde::{Deserialize, Serialize};

use crate::curriculum::StageStreams;
use crate::stream::StreamCollector;
use crate::{
    ByteCorpusConfig, CodeExecConfig, DataError, LabelledStream, LabelledTextConfig, NO_LABEL_ID,
    SequenceTaskConfig, SequenceTaskKind, Split, Vocab, WikiTextConfig, byte_streams, byte_vocab,
    load_labelled_text, load_wikitext, read_byte_file,
};

/// Which task to train on (generated, or a language-modelling corpus read from files), with its
/// settings.
///
/// Serialised with a `task` tag, e.g. in TOML:
///
/// ```toml
/// [data]
/// task = "code_execution"   # or "copy", "reverse"
/// variables = 5
/// seed = 1
/// ```
///
/// or, for language modelling (see `docs/datasets.md`),
///
/// ```toml
/// [data]
/// task = "bytes"                      # enwik8 format, split 90/5/5
/// path = "data/enwik8-mini/enwik8"
/// ```
///
/// ```toml
/// [data]
/// task = "wikitext"
/// dir = "data/wikitext-mini"          # wiki.{train,valid,test}.tokens
/// ```
///
/// or labelled text in the official code-execution format ([`crate::labelled_text`]):
///
/// ```toml
/// [data]
/// task = "labelled_text"
/// dir = "data/algo_seq_3var"          # {train,valid,test}.txt and .txt.labels
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
    /// Next-byte prediction on an enwik8-format file; reports bits per character.
    Bytes(ByteCorpusConfig),
    /// Next-word prediction on a WikiText directory; reports perplexity.
    Wikitext(WikiTextConfig),
    /// Labelled examples read from `{train,valid,test}.txt` + `.txt.labels` (the official
    /// code-execution format); scored like the generated tasks.
    LabelledText(LabelledTextConfig),
}

/// The unit a language-modelling corpus is scored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LmUnit {
    /// Bytes: report bits per character, `mean NLL / ln 2`.
    Byte,
    /// Words (with `<eos>`): report perplexity, `exp(mean NLL)`.
    Word,
}

/// How the targets of a task are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scoring {
    /// Targets equal to this id are not scored. For language modelling it is `u32::MAX`, an
    /// id no target has, so every position is scored.
    pub no_label: u32,
    /// `Some` for language modelling: the unit of bpc / perplexity.
    pub lm: Option<LmUnit>,
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
    /// `Some` for a language-modelling corpus: every position is scored, in this unit.
    pub lm: Option<LmUnit>,
    /// The data of the curriculum stages before the final one, in order (code execution's
    /// `[data.curriculum]`; empty without one).
    pub stages: Vec<StageStreams>,
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

    /// How targets are scored: the no-label id and, for language modelling, the unit.
    pub fn scoring(&self) -> Scoring {
        match self.lm {
            Some(unit) => Scoring {
                no_label: u32::MAX,
                lm: Some(unit),
            },
            None => Scoring {
                no_label: NO_LABEL_ID,
                lm: None,
            },
        }
    }
}

impl TaskConfig {
    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), DataError> {
        match self {
            Self::CodeExecution(config) => config.validate(),
            Self::Copy(config) | Self::Reverse(config) => config.validate(),
            Self::Bytes(config) if config.path.as_os_str().is_empty() => Err(DataError::config(
                "data.path",
                "must name a file, got an empty path",
            )),
            Self::Wikitext(config) if config.dir.as_os_str().is_empty() => Err(DataError::config(
                "data.dir",
                "must name a directory, got an empty path",
            )),
            Self::LabelledText(config) if config.dir.as_os_str().is_empty() => Err(
                DataError::config("data.dir", "must name a directory, got an empty path"),
            ),
            Self::Bytes(_) | Self::Wikitext(_) | Self::LabelledText(_) => Ok(()),
        }
    }

    /// The seed the data is generated from (0 for corpora read from files).
    pub fn seed(&self) -> u64 {
        match self {
            Self::CodeExecution(config) => config.seed,
            Self::Copy(config) | Self::Reverse(config) => config.seed,
            Self::Bytes(_) | Self::Wikitext(_) | Self::LabelledText(_) => 0,
        }
    }

    /// `Some` for a language-modelling corpus: the unit it is scored in.
    pub fn lm_unit(&self) -> Option<LmUnit> {
        match self {
            Self::Bytes(_) => Some(LmUnit::Byte),
            Self::Wikitext(_) => Some(LmUnit::Word),
            _ => None,
        }
    }

    /// Validates, generates the three splits (each from its own [`Split::rng`] stream of the
    /// seed, examples concatenated in order) and builds the vocabulary over all their input and
    /// label tokens. Deterministic: the same config gives the same `TaskData`.
    ///
    /// Corpora and labelled text are read from their files instead (errors name `data.path` /
    /// `data.dir` and the file; labelled text takes its vocabulary from the training files).
    pub fn build(&self) -> Result<TaskData, DataError> {
        self.validate()?;
        let (vocab, [train, valid, test], stages) = match self {
            Self::Bytes(config) => {
                let bytes = read_byte_file(&config.path, "data.path")?;
                (byte_vocab(), byte_streams(&bytes), Vec::new())
            }
            Self::Wikitext(config) => {
                let (vocab, splits) = load_wikitext(&config.dir, "data.dir")?;
                (vocab, splits, Vec::new())
            }
            Self::LabelledText(config) => {
                let (vocab, splits) = load_labelled_text(&config.dir, "data.dir")?;
                (vocab, splits, Vec::new())
            }
            Self::CodeExecution(_) | Self::Copy(_) | Self::Reverse(_) => self.generate()?,
        };
        Ok(TaskData {
            vocab,
            train,
            valid,
            test,
            lm: self.lm_unit(),
            stages,
        })
    }

    /// Generates the three splits of a generated task, the curriculum stages' training and
    /// validation programs, and the vocabulary over all their tokens.
    #[allow(clippy::type_complexity)]
    fn generate(&self) -> Result<(Vocab, [LabelledStream; 3], Vec<StageStreams>), DataError> {
        let mut collector = StreamCollector::default();
        match self {
            Self::CodeExecution(config) => {
                for split in Split::ALL {
                    collector.start_split();
                    config.examples(split).for_each(|ex| collector.push(&ex));
                }
                for stage in 0..config.curriculum.as_ref().map_or(0, |c| c.stages.len()) {
                    for split in [Split::Train, Split::Valid] {
                        collector.start_split();
                        let examples = config.stage_examples(stage, split);
                        examples.for_each(|ex| collector.push(&ex));
                    }
                }
            }
            Self::Bytes(_) | Self::Wikitext(_) | Self::LabelledText(_) => {
                unreachable!("read from files by `build`")
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
        let (vocab, mut streams) = collector.finish();
        let staged = streams.split_off(Split::ALL.len());
        let streams = streams.try_into().expect("one stream per split");
        let stages = match self {
            Self::CodeExecution(CodeExecConfig {
                curriculum: Some(curriculum),
                ..
            }) => {
                let mut staged = staged.into_iter();
                let mut next = || staged.next().expect("train and valid for every stage");
                (curriculum.stages.iter())
                    .map(|stage| StageStreams {
                        statements: stage.statements,
                        train: next(),
                        valid: next(),
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        Ok((vocab, streams, stages))
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

    /// Statements per program of a decoded code-execution stream (one `;` closes each).
    fn program_lengths(vocab: &Vocab, stream: &LabelledStream) -> Vec<usize> {
        let tokens = vocab.decode(&stream.inputs).unwrap();
        let programs = tokens.split(|&t| t == END).filter(|p| !p.is_empty());
        programs
            .map(|p| p.iter().filter(|&&t| t == ";").count())
            .collect()
    }

    #[test]
    fn curriculum_stages_have_their_length_and_leave_the_splits_unchanged() {
        let plain = small_code();
        let TaskConfig::CodeExecution(config) = plain.clone() else {
            unreachable!()
        };
        let text = "task = \"code_execution\"\nstatements = 30\ntrain_programs = 40\n\
                    valid_programs = 10\ntest_programs = 10\nseed = 3\n\
                    [curriculum]\nstages = [{ statements = 5, steps = 3 }, \
                    { statements = 12, steps = 2 }]\n";
        let staged: TaskConfig = toml::from_str(text).unwrap();
        let TaskConfig::CodeExecution(staged_config) = &staged else {
            unreachable!()
        };
        assert_eq!(
            staged_config.curriculum.as_ref().unwrap().stages[1],
            crate::CurriculumStage {
                statements: 12,
                steps: 2
            }
        );
        let (a, b) = (plain.build().unwrap(), staged.build().unwrap());
        // The final length's splits (and vocabulary) are those of the config without stages.
        assert_eq!(
            (&a.vocab, &a.train, &a.valid, &a.test),
            (&b.vocab, &b.train, &b.valid, &b.test)
        );
        assert!(a.stages.is_empty());
        for split in Split::ALL {
            let lengths = program_lengths(&b.vocab, b.split(split));
            assert_eq!(lengths, vec![30; config.programs(split)], "{split:?}");
        }
        assert_eq!(b.stages.len(), 2);
        for (stage, n) in b.stages.iter().zip([5, 12]) {
            assert_eq!(stage.statements, n);
            assert_eq!(program_lengths(&b.vocab, &stage.train), vec![n; 40]);
            assert_eq!(program_lengths(&b.vocab, &stage.valid), vec![n; 10]);
            let inputs = b.vocab.decode(&stage.train.inputs).unwrap();
            assert_eq!(
                interpret(&inputs).unwrap(),
                b.vocab.decode(&stage.train.targets).unwrap()
            );
        }
        assert_ne!(b.stages[0].train, b.stages[0].valid);
        // A plain integer still parses, without a curriculum.
        let plain_text = "task = \"code_execution\"\nstatements = 30\n";
        let parsed: TaskConfig = toml::from_str(plain_text).unwrap();
        let TaskConfig::CodeExecution(parsed) = parsed else {
            unreachable!()
        };
        assert_eq!((parsed.statements, parsed.curriculum), (30, None));
        // Round trip through TOML keeps the stages.
        let back: TaskConfig = toml::from_str(&toml::to_string(&staged).unwrap()).unwrap();
        assert_eq!(back, staged);
        // Invalid stages are caught by `build` too.
        let bad: TaskConfig = toml::from_str(&text.replace("steps = 2", "steps = 0")).unwrap();
        let err = bad.build().unwrap_err().to_string();
        assert!(err.starts_with("data.curriculum.stages"), "{err}");
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
    fn corpus_sections_parse_and_build_from_files() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Experiment {
            data: TaskConfig,
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("enwik8");
        let bytes: Vec<u8> = b"<page><title>AccessibleComputing</title></page>\n".repeat(5);
        std::fs::write(&file, &bytes).unwrap();
        let text = format!(
            "[data]\ntask = \"bytes\"\npath = {:?}\n",
            file.display().to_string()
        );
        let config = toml::from_str::<Experiment>(&text).unwrap().data;
        assert_eq!(config.lm_unit(), Some(LmUnit::Byte));
        let data = config.build().unwrap();
        assert_eq!(data.vocab.len(), 257);
        let n = bytes.len();
        assert_eq!(
            [data.train.len(), data.valid.len(), data.test.len()],
            [n * 9 / 10 - 1, n / 20 - 1, n - n * 9 / 10 - n / 20 - 1]
        );
        assert_eq!(data.scoring().no_label, u32::MAX);
        assert_eq!(data.test.scored_positions(), data.test.len());

        let err = toml::from_str::<Experiment>("[data]\ntask = \"wikitext\"\npath = \"x\"\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("path"), "{err}");
        let missing = TaskConfig::Wikitext(WikiTextConfig {
            dir: dir.path().join("wikitext"),
        });
        let err = missing.build().unwrap_err().to_string();
        assert!(
            err.starts_with("data.dir: ") && err.contains("wiki.train.tokens"),
            "{err}"
        );
        let err = TaskConfig::Bytes(ByteCorpusConfig { path: "".into() })
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "data.path must name a file, got an empty path"
        );
    }

    #[test]
    fn labelled_text_section_parses_validates_and_names_missing_files() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Experiment {
            data: TaskConfig,
        }
        let text = "[data]\ntask = \"labelled_text\"\ndir = \"data/algo\"\n";
        let config = toml::from_str::<Experiment>(text).unwrap().data;
        assert_eq!(
            config,
            TaskConfig::LabelledText(LabelledTextConfig {
                dir: "data/algo".into()
            })
        );
        assert_eq!((config.seed(), config.lm_unit()), (0, None));
        let err = config.build().unwrap_err().to_string();
        assert!(
            err.starts_with("data.dir: data/algo/train.txt: No such file"),
            "{err}"
        );
        let err = toml::from_str::<Experiment>("[data]\ntask = \"labelled_text\"\npath = \"x\"\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("path"), "{err}");
        let empty = TaskConfig::LabelledText(LabelledTextConfig { dir: "".into() });
        assert_eq!(
            empty.validate().unwrap_err().to_string(),
            "data.dir must name a directory, got an empty path"
        );
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
