//! Reloading a trained translation run from its directory.
use std::path::Path;

use burn::tensor::Device;
use mnemo_models::Seq2Seq;

use crate::error::TrainError;
use crate::run_dir::RunDir;
use crate::trainer::load_run_weights;
use crate::translation::config::TranslationConfig;
use crate::translation::data::load_eval_splits;
use crate::translation::state::MtTrainerState;
use crate::translation::trainer::TOKENIZER_FILE;
use mnemo_data::Split;
use mnemo_data::translation::{EvalSplit, SubwordTokenizer};

/// A translation run reloaded from disk, ready to translate.
#[derive(Debug)]
pub struct LoadedTranslationRun {
    /// The run directory.
    pub dir: RunDir,
    /// The resolved single-model config (`config.toml`).
    pub config: TranslationConfig,
    /// The run's subword vocabulary (`tokenizer.json`).
    pub tokenizer: SubwordTokenizer,
    /// The validation split, encoded with it.
    pub valid: EvalSplit,
    /// The test split, encoded with it.
    pub test: EvalSplit,
    /// The trained model, in inference mode on `device`.
    pub model: Seq2Seq,
    /// The (plain) device the model lives on.
    pub device: Device,
    /// The trainer state stored in the checkpoint.
    pub trainer: MtTrainerState,
}

impl LoadedTranslationRun {
    /// The evaluation split `split` (the test split for [`Split::Test`], else validation).
    pub fn split(&self, split: Split) -> &EvalSplit {
        match split {
            Split::Test => &self.test,
            _ => &self.valid,
        }
    }
}

/// Reload the translation run in `dir` onto `device` (the training split is not read).
pub fn load_translation_run(
    dir: impl AsRef<Path>,
    device: &Device,
) -> Result<LoadedTranslationRun, TrainError> {
    let dir = RunDir::at(dir.as_ref());
    for (path, what) in [
        (dir.config(), "config.toml"),
        (dir.path().join(TOKENIZER_FILE), TOKENIZER_FILE),
        (dir.checkpoint(), "checkpoint.mnemo"),
    ] {
        if !path.is_file() {
            return Err(TrainError::NotARun {
                dir: dir.path().to_path_buf(),
                reason: format!("no {what}"),
            });
        }
    }
    let config = TranslationConfig::load(dir.config())?;
    let model_name =
        config
            .model_names()
            .into_iter()
            .next()
            .ok_or_else(|| TrainError::BadFile {
                path: dir.config(),
                message: "names no model".into(),
            })?;
    let model_config = config.models[&model_name].clone();
    let tokenizer = SubwordTokenizer::load(&dir.path().join(TOKENIZER_FILE))
        .map_err(|e| TrainError::data("the run's saved tokenizer", e))?;
    let (valid, test) = load_eval_splits(config.data.parallel(), &tokenizer)?;
    let device = device.clone().inner();
    let (trainer, model): (MtTrainerState, _) = load_run_weights(
        &dir,
        (&model_name, &model_config),
        (TOKENIZER_FILE, tokenizer.vocab_size()),
        &device,
    )?;
    Ok(LoadedTranslationRun {
        dir,
        config,
        tokenizer,
        valid,
        test,
        model,
        device,
        trainer,
    })
}
