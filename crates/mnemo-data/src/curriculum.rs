//! A curriculum over program length for the code-execution task: train on short programs
//! first, then on longer ones, and always evaluate at the final length.
//!
//! The Feedback Transformer paper trains on programs of 100 statements; its discussion
//! suggests starting from short sequences. Written under `[data]`:
//!
//! ```toml
//! [data]
//! task = "code_execution"
//! statements = 100            # the final stage, and the length of the valid/test splits
//!
//! [data.curriculum]
//! stages = [                  # the stages before the final one, shortest first
//!   { statements = 8, steps = 2000 },
//!   { statements = 20, steps = 2000 },
//!   { statements = 50, steps = 2000 },
//! ]
//! advance_at_accuracy = 0.9   # optional: leave a stage early (see below)
//! ```
//!
//! Training reads stage 0's programs for its `steps` optimizer steps, then stage 1's, and so
//! on; after the last listed stage it reads programs of `data.statements` statements until
//! `run.steps`. Without `[data.curriculum]` (or with `statements = 100` alone) a run trains
//! on `data.statements` throughout, exactly as before.
//!
//! With `advance_at_accuracy = a`, each scheduled validation (every `run.eval_every` steps)
//! also scores the current stage's own validation programs (of the stage's length), and the
//! stage ends as soon as that accuracy reaches `a` (or its `steps` run out, whichever comes
//! first). The validation and test splits of the run are always those of `data.statements`.
//!
//! # Data
//! Stage `k` (0-based) draws `data.train_programs` training and `data.valid_programs`
//! validation programs of its length, with the run's generator style, from ChaCha8 streams
//! `3 (k + 1)` and `3 (k + 1) + 1` of `data.seed` ([`stage_rng`]); the final length keeps
//! streams 0, 1 and 2 ([`Split::rng`]), so a curriculum leaves the evaluation data, and the
//! final stage's training data, exactly those of the same config without one.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{DataError, LabelledStream, Split};

/// `[data.curriculum]`: the stages before the final one (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curriculum {
    /// The stages before the final one (`data.statements`), shortest first; at least one.
    pub stages: Vec<CurriculumStage>,
    /// Leave a stage as soon as the accuracy on its own validation programs reaches this
    /// (a fraction in `(0, 1]`), checked at every scheduled validation. Default: none, each
    /// stage runs its `steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance_at_accuracy: Option<f64>,
}

/// One stage of a [`Curriculum`]: programs of `statements` statements for at most `steps`
/// optimizer steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurriculumStage {
    /// Statements per program in this stage (more than `data.variables`, fewer than the next
    /// stage's and than `data.statements`).
    pub statements: usize,
    /// Optimizer steps in this stage (at least 1; fewer when `advance_at_accuracy` is met).
    pub steps: u64,
}

/// The data of one stage before the final one, encoded with the task's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct StageStreams {
    /// Statements per program.
    pub statements: usize,
    /// The stage's training programs, concatenated.
    pub train: LabelledStream,
    /// The stage's validation programs, concatenated (for `advance_at_accuracy`).
    pub valid: LabelledStream,
}

/// The field the stage list is written in, named by every error about it.
pub const STAGES_FIELD: &str = "data.curriculum.stages";

impl Curriculum {
    /// Checks the stages against the task's `variables` and final `statements`; the error
    /// names the field (`data.curriculum.stages`, with the stage, or
    /// `data.curriculum.advance_at_accuracy`).
    pub fn validate(&self, variables: usize, statements: usize) -> Result<(), DataError> {
        if self.stages.is_empty() {
            return Err(DataError::config(
                STAGES_FIELD,
                "lists no stage: give at least one, or remove [data.curriculum]",
            ));
        }
        let mut shorter = variables;
        for (k, stage) in self.stages.iter().enumerate() {
            let at = format!("stage {} ({stage:?})", k + 1);
            if stage.steps == 0 {
                return Err(DataError::config(
                    STAGES_FIELD,
                    format!("{at}: steps must be at least 1"),
                ));
            }
            if stage.statements <= shorter {
                let what = match k {
                    0 => format!("data.variables ({variables})"),
                    _ => format!("the stage before ({shorter})"),
                };
                return Err(DataError::config(
                    STAGES_FIELD,
                    format!("{at}: statements must be more than {what}"),
                ));
            }
            shorter = stage.statements;
        }
        if shorter >= statements {
            return Err(DataError::config(
                STAGES_FIELD,
                format!(
                    "the last stage has {shorter} statements, not fewer than data.statements \
                     ({statements}), the final stage and the length evaluated on"
                ),
            ));
        }
        match self.advance_at_accuracy {
            Some(a) if !(a > 0.0 && a <= 1.0) => Err(DataError::config(
                "data.curriculum.advance_at_accuracy",
                format!("must be a fraction in (0, 1], got {a}"),
            )),
            _ => Ok(()),
        }
    }

    /// Optimizer steps of all stages before the final one (at most: a stage may end early
    /// with `advance_at_accuracy`).
    pub fn steps(&self) -> u64 {
        self.stages.iter().map(|s| s.steps).sum()
    }

    /// The program lengths in training order, the final `statements` last: `8 → 20 → 100`.
    pub fn describe(&self, statements: usize) -> String {
        let lengths: Vec<String> = self
            .stages
            .iter()
            .map(|s| s.statements)
            .chain([statements])
            .map(|n| n.to_string())
            .collect();
        lengths.join(" → ")
    }
}

/// The generator of `split` (train or valid) of curriculum stage `stage` (0-based):
/// `ChaCha8Rng` seeded with `seed`, on stream `3 (stage + 1) + split.stream_id()`, apart from
/// the streams 0–2 of the final length's splits.
pub fn stage_rng(seed: u64, stage: usize, split: Split) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(3 * (stage as u64 + 1) + split.stream_id());
    rng
}

#[cfg(test)]
mod tests {
    use rand::RngCore;

    use super::*;

    fn stage(statements: usize, steps: u64) -> CurriculumStage {
        CurriculumStage { statements, steps }
    }

    fn curriculum(stages: &[(usize, u64)]) -> Curriculum {
        Curriculum {
            stages: stages.iter().map(|&(n, s)| stage(n, s)).collect(),
            advance_at_accuracy: None,
        }
    }

    #[test]
    fn valid_stages_pass_and_describe_themselves() {
        let c = curriculum(&[(8, 100), (20, 50), (50, 10)]);
        assert_eq!(c.validate(3, 100), Ok(()));
        assert_eq!(c.steps(), 160);
        assert_eq!(c.describe(100), "8 → 20 → 50 → 100");
        let c = Curriculum {
            advance_at_accuracy: Some(1.0),
            ..curriculum(&[(4, 1)])
        };
        assert_eq!(c.validate(3, 5), Ok(()));
    }

    #[test]
    fn bad_stages_name_the_field_and_the_stage() {
        let reason = |c: Curriculum| match c.validate(3, 100).unwrap_err() {
            DataError::InvalidConfig { field, reason } => format!("{field}: {reason}"),
            other => panic!("{other:?}"),
        };
        for (c, expected) in [
            (curriculum(&[]), "data.curriculum.stages: lists no stage"),
            (
                curriculum(&[(8, 10), (20, 0)]),
                "data.curriculum.stages: stage 2 (CurriculumStage { statements: 20, steps: 0 }): \
                 steps must be at least 1",
            ),
            (
                curriculum(&[(0, 10)]),
                "data.curriculum.stages: stage 1 (CurriculumStage { statements: 0, steps: 10 }): \
                 statements must be more than data.variables (3)",
            ),
            (
                curriculum(&[(20, 10), (20, 10)]),
                "statements must be more than the stage before (20)",
            ),
            (
                curriculum(&[(20, 10), (100, 10)]),
                "the last stage has 100 statements, not fewer than data.statements (100)",
            ),
            (
                Curriculum {
                    advance_at_accuracy: Some(0.0),
                    ..curriculum(&[(8, 10)])
                },
                "data.curriculum.advance_at_accuracy: must be a fraction in (0, 1], got 0",
            ),
            (
                Curriculum {
                    advance_at_accuracy: Some(f64::NAN),
                    ..curriculum(&[(8, 10)])
                },
                "data.curriculum.advance_at_accuracy: must be a fraction",
            ),
        ] {
            let got = reason(c);
            assert!(got.contains(expected), "{got}\n  expected: {expected}");
        }
    }

    #[test]
    fn stage_streams_differ_from_the_splits_and_each_other() {
        let first = |mut rng: ChaCha8Rng| rng.next_u64();
        let mut seen: Vec<u64> = Split::ALL.map(|s| first(s.rng(7))).to_vec();
        for k in 0..3 {
            for split in [Split::Train, Split::Valid] {
                seen.push(first(stage_rng(7, k, split)));
            }
        }
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{seen:?}");
        assert_eq!(
            first(stage_rng(7, 1, Split::Valid)),
            first(stage_rng(7, 1, Split::Valid))
        );
    }
}
