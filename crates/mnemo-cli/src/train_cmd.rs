//! `mnemo train`: train the models of an experiment one after another.
use std::path::{Path, PathBuf};

use crate::run_kind::RunKind;
use crate::train_place::TrainPlace;
use anyhow::{Context, bail};
use clap::Args;
use mnemo_rl::train::{RlConfig, rl_results_table, train_rl};
use mnemo_train::translation::{TranslationConfig, mt_results_table, train_translation};
use mnemo_train::{
    Experiment, ExperimentConfig, RunConfig, RunDir, TrainError, TrainOptions, results_table, train,
};

/// Arguments of `mnemo train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Experiment config (TOML), e.g. experiments/smoke/tiny.toml.
    config: PathBuf,
    #[command(flatten)]
    place: TrainPlace,
    /// Continue runs from their checkpoints instead of refusing to overwrite them.
    #[arg(long)]
    resume: bool,
    /// With --resume: continue even though the data files changed since the checkpoint (by
    /// default such a resume is refused, naming the file).
    #[arg(long, requires = "resume")]
    allow_data_change: bool,
    /// Train only this model of the config.
    #[arg(long)]
    model: Option<String>,
    /// Train with this `run.seed` instead of the config's, into `<run.name>-seed<N>` (repeat
    /// an experiment over seeds without copying its config).
    #[arg(long)]
    seed: Option<u64>,
}

/// Train, then print the results table and write it to `<out>/<run name>/results.md`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config).unwrap_or_default();
    match RunKind::of_config(&text) {
        RunKind::Rl => {
            // Memory policies trained with PPO, tabulated by success rate.
            let mut config = RlConfig::load(&args.config)?;
            reseed(&mut config.run, args.seed);
            train_experiment(args, &config, train_rl, rl_results_table)
        }
        RunKind::Translation => {
            // Encoder–decoders, tabulated with BLEU and speed.
            let mut config = TranslationConfig::load(&args.config)?;
            reseed(&mut config.run, args.seed);
            train_experiment(args, &config, train_translation, mt_results_table)
        }
        RunKind::LanguageModel => {
            let mut config = ExperimentConfig::load(&args.config)?;
            reseed(&mut config.run, args.seed);
            train_experiment(args, &config, train, results_table)
        }
    }
}

/// `--seed`: another `run.seed`, and a run name that says so.
fn reseed(run: &mut RunConfig, seed: Option<u64>) {
    if let Some(seed) = seed {
        run.seed = seed;
        run.name = format!("{}-seed{seed}", run.name);
    }
}

/// The options of every run, on the device `--backend` names (opened here, with autodiff).
fn options(args: &TrainArgs) -> anyhow::Result<TrainOptions> {
    Ok(TrainOptions {
        allow_data_change: args.allow_data_change,
        ..args.place.options(args.resume)?
    })
}

/// Train the models of `config` asked for (`--model` or all) with `train_one`, then tabulate
/// with `table` every model of the experiment that has a summary, not only those just
/// trained, and after them the models other configs trained under the same run name (the
/// paired configs of `experiments/algorithmic/` share one): the same for every kind of
/// experiment.
fn train_experiment<C: Experiment, R, S: serde::de::DeserializeOwned>(
    args: &TrainArgs,
    config: &C,
    train_one: fn(&C, &str, &TrainOptions) -> Result<R, TrainError>,
    table: fn(&[S]) -> String,
) -> anyhow::Result<()> {
    let opts = options(args)?;
    let run_name = &config.run().name;
    let models: Vec<String> = config.models().keys().cloned().collect();
    for name in model_names(args, &models)? {
        train_one(config, &name, &opts)?;
    }
    let mut summaries = Vec::new();
    for name in &models {
        summaries.extend(read_summary::<S>(
            &RunDir::new(&args.place.out, run_name, name).summary(),
        )?);
    }
    let mut others = Vec::new();
    for name in other_models(&args.place.out.join(run_name), &models)? {
        // No summary yet, or one of another kind of experiment under the same name: not in
        // this table.
        if let Ok(Some(summary)) =
            read_summary::<S>(&RunDir::new(&args.place.out, run_name, &name).summary())
        {
            summaries.push(summary);
            others.push(name);
        }
    }
    let table = table(&summaries);
    print!("{table}");
    write_results(args, run_name, &table, &others)
}

/// The directories under `run` (`<out>/<run name>`) not named in `models`, sorted by name.
fn other_models(run: &Path, models: &[String]) -> anyhow::Result<Vec<String>> {
    let entries =
        std::fs::read_dir(run).with_context(|| format!("{}: cannot list", run.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list", run.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !models.contains(&name) && entry.path().is_dir() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn write_results(
    args: &TrainArgs,
    run_name: &str,
    table: &str,
    others: &[String],
) -> anyhow::Result<()> {
    let path = args.place.out.join(run_name).join("results.md");
    let also = match others {
        [] => String::new(),
        names => format!(
            "\nAlso in the table, trained by another config under this run name: {}.\n",
            names.join(", ")
        ),
    };
    let text = format!(
        "# {run_name}\n\nCommand: `mnemo train {} --backend {}`\n{also}\n{table}",
        args.config.display(),
        args.place.backend.backend
    );
    std::fs::write(&path, text).with_context(|| format!("{}: cannot write results", path.display()))
}

/// The models to train: `--model NAME` (checked) or all of them.
fn model_names(args: &TrainArgs, all: &[String]) -> anyhow::Result<Vec<String>> {
    match &args.model {
        Some(name) if all.contains(name) => Ok(vec![name.clone()]),
        Some(name) => bail!(
            "--model {name}: {} has no model named `{name}`; it has: {}",
            args.config.display(),
            all.join(", ")
        ),
        None => Ok(all.to_vec()),
    }
}

/// The summary at `path`, if the run got that far.
fn read_summary<S: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<S>> {
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let summary = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a run summary", path.display()))?;
    Ok(Some(summary))
}
