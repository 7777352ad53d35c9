//! `mnemo finetune RUN NEW_CONFIG`: train a model of a new config starting from a trained
//! run's weights (ULMFiT-style fine-tuning; Howard & Ruder 2018). The new config sets the
//! data and the schedule; its `[optim]` holds the fine-tuning options: `decay =
//! "slanted_triangular"` (`cut_frac`, `ratio`), `layer_lr_decay` (discriminative rates),
//! `unfreeze_every` (gradual unfreezing) and `max_change` (the ℓ∞ ball of Zhu et al. 2020).
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use mnemo_train::{ExperimentConfig, finetune, results_table};

use crate::run_kind::{self, RunKind};
use crate::train_place::TrainPlace;

/// Arguments of `mnemo finetune`.
#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// The trained run to start from, e.g. runs/quickstart/feedback.
    run_dir: PathBuf,
    /// The experiment config to fine-tune with (data, steps, `[optim]`); its model must have
    /// the run's architecture (vocab_size and dropout may differ).
    config: PathBuf,
    /// The model of the config to train (default: the run's model name if the config has it,
    /// else the config's only model).
    #[arg(long)]
    model: Option<String>,
    #[command(flatten)]
    place: TrainPlace,
    /// Continue the fine-tuning run from its own checkpoint.
    #[arg(long)]
    resume: bool,
}

/// Fine-tune, then print the one-row results table.
pub fn run(args: &FinetuneArgs) -> anyhow::Result<()> {
    run_kind::expect(&args.run_dir, "finetune", &[RunKind::LanguageModel])?;
    let config = ExperimentConfig::load(&args.config)?;
    let model = model_name(args, &config)?;
    let opts = args.place.options(args.resume)?;
    let summary = finetune(&config, &model, &args.run_dir, &opts)?;
    print!("{}", results_table(&[summary]));
    Ok(())
}

/// `--model`, or the run's model name when the config has it, or the config's only model.
fn model_name(args: &FinetuneArgs, config: &ExperimentConfig) -> anyhow::Result<String> {
    let names = config.model_names();
    if let Some(name) = &args.model {
        if !names.contains(name) {
            bail!(
                "--model {name}: {} has no model named `{name}`; it has: {}",
                args.config.display(),
                names.join(", ")
            );
        }
        return Ok(name.clone());
    }
    let run_name = args
        .run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    match (run_name, names.as_slice()) {
        (Some(name), _) if names.contains(&name) => Ok(name),
        (_, [only]) => Ok(only.clone()),
        _ => bail!(
            "{}: several models ({}); choose one with --model",
            args.config.display(),
            names.join(", ")
        ),
    }
}
