//! Reloading a trained translation run from its directory.
use std::path::Path;

use burn::tensor::Device;
use mnemo_models::Seq2Seq;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::error::TrainError;
use crate::run_dir::RunDir;
use crate::translation::config::TranslationConfig;
use crate::translation::data::load_translation_data;
use mnemo_data::translation::TranslationData;
use crate::translation::state::MtTrainerState;
use crate::translation::trainer::TOKENIZER_FILE;

/// A translation run reloaded from disk, ready to translate.
#[derive(Debug)]
pub struct LoadedTranslationRun {
    /// The run directory.
    pub dir: RunDir,
    /// The resolved single-model config (`config.toml`).
    pub config: TranslationConfig,
    /// The corpus, encoded with the run's saved vocabulary.
    pub data: TranslationData,
    /// The trained model, in inference mode on `device`.
    pub model: Seq2Seq,
    /// The (plain) device the model lives on.
    pub device: Device,
    /// The trainer state stored in the checkpoint.
    pub trainer: MtTrainerState,
}

/// Reload the translation run in `dir` on backend `backend`.
pub fn load_translation_run(
    dir: impl AsRef<Path>,
    backend: &str,
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
    let model_name = config.model_names().into_iter().next().ok_or_else(|| {
        TrainError::BadFile {
            path: dir.config(),
            message: "names no model".into(),
        }
    })?;
    let model_config = config.models[&model_name].clone();
    let data = load_translation_data(config.data.parallel(), &dir.path().join(TOKENIZER_FILE))?;
    if model_config.vocab_size != data.tokenizer.vocab_size() {
        return Err(TrainError::BadFile {
            path: dir.config(),
            message: format!(
                "models.{model_name}.vocab_size is {}, but {TOKENIZER_FILE} has {} tokens",
                model_config.vocab_size,
                data.tokenizer.vocab_size()
            ),
        });
    }
    let device = mnemo_backend::device(backend)?;
    let ckpt = Checkpoint::<MtTrainerState>::read(&dir.checkpoint())?;
    if ckpt.trainer.model_config != model_config {
        return Err(CheckpointError::mismatch(&dir.checkpoint(), "written for another model config").into());
    }
    let model = ckpt.load_model(model_config.init(&device), &dir.checkpoint())?;
    Ok(LoadedTranslationRun {
        dir,
        config,
        data,
        model,
        device,
        trainer: ckpt.trainer,
    })
}
