//! Which training stream a language-model run reads: the stages of code execution's
//! `[data.curriculum]` ([`mnemo_data::curriculum`]), then the final one.
//!
//! A run without a curriculum has one stage, the training split, for all its steps. With one,
//! stage `k` ends after its `steps` optimizer steps, or at a scheduled validation whose
//! accuracy on the stage's own validation programs reaches `advance_at_accuracy`; the last
//! stage (`data.statements`) runs to the end. Where the run stands (stage, steps taken in
//! it) is part of the checkpoint's [`LmPosition`](crate::lm::LmPosition).
use mnemo_data::{CodeExecConfig, Split, StreamBatcher, TaskConfig, TaskData};
use serde_json::{Map, Value, json};

use crate::error::TrainError;
use crate::evaluate::stream_batcher;
use crate::experiment::ExperimentConfig;

/// One stage: its training batches and, when it can end on accuracy, its validation batches.
#[derive(Debug)]
struct Stage {
    /// Statements per program (`None` for tasks other than code execution).
    statements: Option<usize>,
    /// Optimizer steps in the stage (`None`: the final stage, until the end of the run).
    steps: Option<u64>,
    train: StreamBatcher,
    /// The stage's own validation programs (only with `advance_at_accuracy`, before the last).
    valid: Option<StreamBatcher>,
}

/// The stages of a run and where it stands in them.
#[derive(Debug)]
pub(crate) struct Schedule {
    stages: Vec<Stage>,
    advance_at_accuracy: Option<f64>,
    /// `curriculum of 8 → 20 → 100 statements`, for the opening line.
    description: Option<String>,
    current: usize,
    steps_in_stage: u64,
}

impl Schedule {
    /// The stages of `config`'s data: those of its curriculum (if any), then the training split
    /// `train` of `data`.
    pub(crate) fn new(
        config: &ExperimentConfig,
        data: &TaskData,
        train: StreamBatcher,
    ) -> Result<Self, TrainError> {
        let (statements, curriculum) = match &config.data {
            TaskConfig::CodeExecution(CodeExecConfig {
                statements,
                curriculum,
                ..
            }) => (Some(*statements), curriculum.as_ref()),
            _ => (None, None),
        };
        let threshold = curriculum.and_then(|c| c.advance_at_accuracy);
        let mut stages = Vec::with_capacity(data.stages.len() + 1);
        let listed = curriculum.map_or(&[][..], |c| &c.stages);
        for (k, (stage, streams)) in listed.iter().zip(&data.stages).enumerate() {
            let name = |split: Split| {
                format!(
                    "curriculum stage {} ({} statements) {}",
                    k + 1,
                    stage.statements,
                    split.name()
                )
            };
            let batcher = |split| {
                let stream = match split {
                    Split::Train => &streams.train,
                    _ => &streams.valid,
                };
                stream_batcher(config, stream, split, &name(split))
            };
            stages.push(Stage {
                statements: Some(stage.statements),
                steps: Some(stage.steps),
                train: batcher(Split::Train)?,
                valid: threshold.map(|_| batcher(Split::Valid)).transpose()?,
            });
        }
        stages.push(Stage {
            statements,
            steps: None,
            train,
            valid: None,
        });
        let description = curriculum
            .zip(statements)
            .map(|(c, n)| format!("curriculum of {} statements", c.describe(n)));
        Ok(Self {
            stages,
            advance_at_accuracy: threshold,
            description,
            current: 0,
            steps_in_stage: 0,
        })
    }

    /// Whether the run has stages before the final one.
    pub(crate) fn is_curriculum(&self) -> bool {
        self.stages.len() > 1
    }

    /// What the run trains on, for its opening line: `curriculum of 8 → 20 → 100
    /// statements`; `None` without a curriculum.
    pub(crate) fn describe(&self) -> Option<String> {
        self.description.clone()
    }

    /// The training batches of the current stage.
    pub(crate) fn train(&self) -> &StreamBatcher {
        &self.stages[self.current].train
    }

    /// Whether the current stage has taken all its steps (never for the final one).
    pub(crate) fn stage_done(&self) -> bool {
        self.stages[self.current]
            .steps
            .is_some_and(|steps| self.steps_in_stage >= steps)
    }

    /// Move to the next stage (the caller restarts the data position).
    pub(crate) fn advance(&mut self) {
        if self.current + 1 < self.stages.len() {
            self.current += 1;
            self.steps_in_stage = 0;
        }
    }

    /// Count one optimizer step in the current stage.
    pub(crate) fn count_step(&mut self) {
        self.steps_in_stage += 1;
    }

    /// The threshold of `advance_at_accuracy` and the current stage's validation batches,
    /// when the current stage can end on accuracy.
    pub(crate) fn stage_valid(&self) -> Option<(f64, &StreamBatcher)> {
        let valid = self.stages[self.current].valid.as_ref()?;
        Some((self.advance_at_accuracy?, valid))
    }

    /// The fields of a `metrics.jsonl` line about the current stage: `stage` (0-based, the
    /// final one last) and `statements`; none without a curriculum.
    pub(crate) fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        if self.is_curriculum() {
            let statements = self.stages[self.current].statements;
            fields.insert("stage".into(), self.current.into());
            fields.insert("statements".into(), json!(statements));
        }
        fields
    }

    /// The current stage for a progress line, `stage 2/3 (20 statements)` (1-based, the final
    /// stage last); None without a curriculum.
    pub(crate) fn text(&self) -> Option<String> {
        let statements = self.stages[self.current].statements?;
        self.is_curriculum().then(|| {
            format!(
                "stage {}/{} ({statements} statements)",
                self.current + 1,
                self.stages.len()
            )
        })
    }

    /// The current stage and steps taken in it, as checkpointed.
    pub(crate) fn position(&self) -> (usize, u64) {
        (self.current, self.steps_in_stage)
    }

    /// Move to `stage` with `steps` taken in it; an error says why that cannot be.
    pub(crate) fn restore(&mut self, stage: usize, steps: u64) -> Result<(), String> {
        if stage >= self.stages.len() {
            return Err(format!(
                "curriculum stage {stage} of a run with {} stages",
                self.stages.len()
            ));
        }
        self.current = stage;
        self.steps_in_stage = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mnemo_data::END;

    use super::*;
    use crate::evaluate::split_batcher;
    use crate::experiment::tests::EXAMPLE;

    /// Statements of each whole program in row 0 of every segment `batcher` serves.
    fn row0_programs(data: &TaskData, batcher: &StreamBatcher) -> Vec<usize> {
        let ids: Vec<u32> = batcher
            .segments()
            .flat_map(|s| s.inputs[..s.len].to_vec())
            .collect();
        let tokens = data.vocab.decode(&ids).unwrap();
        let mut programs: Vec<&[&str]> = tokens.split(|&t| t == END).collect();
        programs.pop(); // cut off by the end of the row
        programs
            .iter()
            .map(|p| p.iter().filter(|&&t| t == ";").count())
            .collect()
    }

    #[test]
    fn stages_serve_programs_of_their_length_for_their_steps() {
        let text = EXAMPLE.replace(
            "seed = 1\n\n[train]",
            "seed = 1\n\n[data.curriculum]\nstages = [{ statements = 4, steps = 2 }, \
             { statements = 7, steps = 1 }]\nadvance_at_accuracy = 0.5\n\n[train]",
        );
        let config = ExperimentConfig::from_toml_str(&text).unwrap();
        let data = config.data.build().unwrap();
        let train = split_batcher(&config, &data, Split::Train).unwrap();
        let mut schedule = Schedule::new(&config, &data, train).unwrap();
        assert!(schedule.is_curriculum());
        assert_eq!(
            schedule.describe().as_deref(),
            Some("curriculum of 4 → 7 → 10 statements")
        );
        for (stage, (statements, steps)) in [(4, Some(2)), (7, Some(1)), (10, None)]
            .into_iter()
            .enumerate()
        {
            let programs = row0_programs(&data, schedule.train());
            assert!(programs.len() >= 2, "{programs:?}");
            assert!(programs.iter().all(|&n| n == statements), "{programs:?}");
            let fields = schedule.fields();
            assert_eq!(
                (fields["stage"].as_u64(), fields["statements"].as_u64()),
                (Some(stage as u64), Some(statements as u64))
            );
            assert_eq!(
                schedule.text(),
                Some(format!("stage {}/3 ({statements} statements)", stage + 1))
            );
            // The stage's own validation programs while it can end on accuracy.
            match schedule.stage_valid() {
                Some((threshold, valid)) => {
                    assert_eq!(threshold, 0.5);
                    assert!(row0_programs(&data, valid).iter().all(|&n| n == statements));
                }
                None => assert_eq!(steps, None),
            }
            for _ in 0..steps.unwrap_or(5) {
                assert!(!schedule.stage_done());
                schedule.count_step();
            }
            assert_eq!(schedule.stage_done(), steps.is_some());
            schedule.advance();
        }
        // The final stage reads the training split itself, and stays.
        assert_eq!(schedule.position().0, 2);
        assert_eq!(
            *schedule.train(),
            split_batcher(&config, &data, Split::Train).unwrap()
        );
        assert!(schedule.restore(3, 0).is_err());
        // Without a curriculum the progress line names no stage.
        let config = ExperimentConfig::from_toml_str(EXAMPLE).unwrap();
        let data = config.data.build().unwrap();
        let train = split_batcher(&config, &data, Split::Train).unwrap();
        assert_eq!(Schedule::new(&config, &data, train).unwrap().text(), None);
        schedule.restore(1, 1).unwrap();
        assert!(schedule.stage_done());
    }
}
