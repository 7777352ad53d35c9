//! `mnemo compare-backends`: the same weights and batch on every compiled backend, side by side.
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use mnemo_compare::{Timing, Tolerance, compare, default_backends};
use mnemo_train::ExperimentConfig;

/// The quickstart experiment, compared when no config is given.
const QUICKSTART: &str = include_str!("../../../experiments/quickstart.toml");

/// Arguments of `mnemo compare-backends`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Experiment config (TOML) whose models are compared [default: the quickstart's].
    config: Option<PathBuf>,
    /// Compare only this model of the config.
    #[arg(long)]
    model: Option<String>,
    /// Comma-separated backends [default: every compiled one].
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// Backend the others are measured against; it also initialises the weights.
    #[arg(long, default_value = mnemo_backend::DEFAULT_BACKEND)]
    reference: String,
    /// Untimed training steps before the timed ones.
    #[arg(long, default_value_t = Timing::default().warmup)]
    warmup: usize,
    /// Timed training steps (their median is reported; 0 skips timing).
    #[arg(long, default_value_t = Timing::default().steps)]
    steps: usize,
    /// Tokens generated in the generation benchmark (0 skips it).
    #[arg(long, default_value_t = Timing::default().gen_tokens)]
    gen_tokens: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Print the comparison; fail (after printing it) if a backend failed or disagreed.
pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => ExperimentConfig::load(path)?,
        None => {
            ExperimentConfig::from_toml_str(QUICKSTART).context("the built-in quickstart config")?
        }
    };
    let models = match &args.model {
        Some(name) => vec![name.clone()],
        None => config.model_names(),
    };
    let backends = match args.backends.is_empty() {
        true => default_backends(),
        false => args.backends.clone(),
    };
    let mut backends_with_reference = vec![args.reference.clone()];
    backends_with_reference.extend(backends.into_iter().filter(|b| *b != args.reference));
    let timing = Timing {
        warmup: args.warmup,
        steps: args.steps,
        gen_tokens: args.gen_tokens,
    };
    let report = compare(
        &config,
        &models,
        &backends_with_reference,
        &args.reference,
        timing,
        Tolerance::DEFAULT,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let t = &report.tolerance;
        println!(
            "reference: {}; tolerance (relative L2 error): logits {:.0e}, loss {:.0e}, gradients \
             {:.0e}; step time: median of {} after {} warm-up; generation: batch 1, {} new tokens",
            report.reference,
            t.logits,
            t.loss,
            t.grads,
            timing.steps,
            timing.warmup,
            timing.gen_tokens
        );
        print!("{}", report.table());
    }
    if !report.all_agree() {
        let bad: Vec<String> = report
            .rows
            .iter()
            .filter(|r| !r.within_tolerance)
            .map(|r| match r.agreement {
                Some(_) => format!("{} on {} (outside tolerance)", r.model, r.backend),
                None => format!("{} on {} (failed)", r.model, r.backend),
            })
            .collect();
        bail!(
            "not every backend ran and agreed with `{}`: {}",
            report.reference,
            bad.join(", ")
        );
    }
    Ok(())
}
