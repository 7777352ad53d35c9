//! `mnemo generate`: the model's output at each prompt token, then a continuation.
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Args;

use crate::backend_arg::BackendArg;
use crate::run_kind;
use mnemo_train::{GenerateConfig, generate};

/// Arguments of `mnemo generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Run directory, e.g. runs/smoke-tiny/feedback.
    run_dir: PathBuf,
    /// Space-separated prompt tokens, e.g. "x = 4 ; print x ;".
    #[arg(
        long,
        required_unless_present = "prompt_file",
        conflicts_with = "prompt_file"
    )]
    prompt: Option<String>,
    /// Read the prompt from this file instead (for prompts longer than an argument may be).
    #[arg(long, value_name = "FILE")]
    prompt_file: Option<PathBuf>,
    /// Tokens to generate after the prompt.
    #[arg(long, default_value_t = 16)]
    max_new_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    backend: BackendArg,
}

/// Print each prompt token with the model's output there, then the continuation.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let run = run_kind::load_lm(&args.run_dir, "generate", &args.backend)?;
    let (flag, text) = match (&args.prompt, &args.prompt_file) {
        (Some(prompt), _) => ("--prompt", prompt.clone()),
        (None, Some(file)) => (
            "--prompt-file",
            std::fs::read_to_string(file)
                .with_context(|| format!("--prompt-file {}: cannot read", file.display()))?,
        ),
        (None, None) => unreachable!("clap requires one of --prompt and --prompt-file"),
    };
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let prompt = run.vocab.encode(&tokens).map_err(|e| {
        anyhow!(
            "{flag}: {e}; the vocabulary of {} is: {}",
            args.run_dir.display(),
            run.vocab.tokens().join(" ")
        )
    })?;
    let config = GenerateConfig {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        seed: args.seed,
    };
    let generation = generate(&run.model, &prompt, &config, &run.device)?;
    let width = tokens.iter().map(|t| t.len()).max().unwrap_or(0).max(5);
    println!("{:<width$}  model output", "token");
    for (token, &predicted) in tokens.iter().zip(&generation.prompt_predictions) {
        println!("{token:<width$}  {}", run.vocab.token(predicted));
    }
    let continuation: Vec<&str> = generation
        .generated
        .iter()
        .map(|&id| run.vocab.token(id))
        .collect();
    println!("generated: {}", continuation.join(" "));
    Ok(())
}
