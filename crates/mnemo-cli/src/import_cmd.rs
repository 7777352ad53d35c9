//! `mnemo import safetensors FILE --config CONFIG.toml [--model NAME] --out RUN`: a run directory
//! whose weights are read from a safetensors file (PyTorch names and layouts, docs/models.md,
//! "Weights in PyTorch"), at step 0 with fresh optimizer moments; `mnemo eval`, `generate` and
//! `train --resume` accept it (`mnemo_train::weights_run`).
//!
//! `mnemo import official CHECKPOINT --config C.toml --data OFFICIAL_DATA_DIR --out RUN
//! --hid-sz … --nlayers … [--feedback] …`: the same from a checkpoint of the paper's own code, a
//! Feedback Transformer or (without `--feedback`) the baseline TransformerSeq
//! (`mnemo_train::official_import`; docs/official.md).
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::backend_arg::BackendArg;
use mnemo_train::official_import::{OfficialFlags, import_official_run};
use mnemo_train::{ExperimentConfig, import_run};

/// Arguments of `mnemo import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    command: ImportCommand,
}

/// What `mnemo import` reads.
#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// A safetensors file (e.g. from `mnemo export` or a PyTorch implementation).
    Safetensors(SafetensorsArgs),
    /// A checkpoint of the paper's official code (facebookresearch/transformer-sequential),
    /// described by the official flags it was trained with.
    Official(OfficialArgs),
}

/// Arguments of `mnemo import official`: the official model flags (names and defaults of the
/// official `main.py`), the official data directory and a mnemo config for the rest.
#[derive(Debug, Args)]
struct OfficialArgs {
    /// The official checkpoint (`torch.save` dict with a "model" state dict, or a bare state
    /// dict; `module.` prefixes of DistributedDataParallel are removed).
    checkpoint: PathBuf,
    /// Experiment config (TOML) giving the data, training and optimizer settings; its model
    /// `--model` is replaced by the official one (added if absent).
    #[arg(long)]
    config: PathBuf,
    /// The model name the run gets (default: `feedback` with --feedback, else
    /// `transformer_seq`).
    #[arg(long)]
    model: Option<String>,
    /// The official `--data` directory the model was trained on (its dictionary orders the
    /// embedding and output rows).
    #[arg(long)]
    data: PathBuf,
    /// The run directory to create (must not hold a checkpoint).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 256)]
    hid_sz: usize,
    #[arg(long, default_value_t = 1024)]
    inner_hid_sz: usize,
    #[arg(long, default_value_t = 8)]
    nlayers: usize,
    #[arg(long, default_value_t = 2)]
    nheads: usize,
    /// Head size (0: hid-sz / nheads).
    #[arg(long, default_value_t = 0)]
    head_dim: usize,
    /// Block length (mnemo's `train.segment_len`).
    #[arg(long, default_value_t = 64)]
    mem_sz: usize,
    /// Attention span (mnemo's `span`).
    #[arg(long, default_value_t = 64)]
    attn_lim: usize,
    #[arg(long, default_value_t = 0.2)]
    dropout: f64,
    #[arg(long)]
    pre_norm: bool,
    #[arg(long)]
    share_proj_kv: bool,
    /// The model is a Feedback Transformer (without it: the official baseline TransformerSeq,
    /// imported as a Transformer-XL).
    #[arg(long)]
    feedback: bool,
    /// Adaptive attention span in every layer (mnemo's `adaptive_span`).
    #[arg(long)]
    adapt_span: bool,
    /// Span loss coefficient (`adaptive_span.loss`).
    #[arg(long, default_value_t = 0.0)]
    adapt_span_loss: f64,
    /// Ramp length, a whole number (`adaptive_span.ramp`).
    #[arg(long, default_value_t = 32.0)]
    adapt_span_len: f64,
    /// Initial span ratio (`adaptive_span.init`).
    #[arg(long, default_value_t = 0.0)]
    adapt_span_init: f64,
    /// Trim step (`adaptive_span.trim_step`).
    #[arg(long, default_value_t = 64)]
    adapt_span_trim_step: usize,
    /// One span per layer (`adaptive_span.per_head = false`).
    #[arg(long)]
    adapt_span_layer: bool,
    /// TransformerSeq only (mnemo trims its memory anyway); refused with --feedback.
    #[arg(long)]
    adapt_span_cache: bool,
    #[command(flatten)]
    backend: BackendArg,
}

impl OfficialArgs {
    fn flags(&self) -> OfficialFlags {
        OfficialFlags {
            hid_sz: self.hid_sz,
            inner_hid_sz: self.inner_hid_sz,
            nlayers: self.nlayers,
            nheads: self.nheads,
            head_dim: self.head_dim,
            mem_sz: self.mem_sz,
            attn_lim: self.attn_lim,
            dropout: self.dropout,
            pre_norm: self.pre_norm,
            share_proj_kv: self.share_proj_kv,
            feedback: self.feedback,
            adapt_span: self.adapt_span,
            adapt_span_loss: self.adapt_span_loss,
            adapt_span_len: self.adapt_span_len,
            adapt_span_init: self.adapt_span_init,
            adapt_span_trim_step: self.adapt_span_trim_step,
            adapt_span_layer: self.adapt_span_layer,
            adapt_span_cache: self.adapt_span_cache,
        }
    }
}

/// Arguments of `mnemo import safetensors`.
#[derive(Debug, Args)]
struct SafetensorsArgs {
    /// The weights.
    file: PathBuf,
    /// Experiment config (TOML) with the model's architecture, data and training settings.
    #[arg(long)]
    config: PathBuf,
    /// The model of the config (needed when it has several).
    #[arg(long)]
    model: Option<String>,
    /// The run directory to create, e.g. runs/imported/feedback (must not hold a checkpoint).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    backend: BackendArg,
}

/// Read the weights into a new run directory.
pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let (file, run) = match &args.command {
        ImportCommand::Safetensors(args) => {
            let config = ExperimentConfig::load(&args.config)?;
            let device = args.backend.device()?;
            let run = import_run(
                &args.file,
                &config,
                args.model.as_deref(),
                &args.out,
                &device,
            )?;
            (&args.file, run)
        }
        ImportCommand::Official(args) => {
            let config = ExperimentConfig::load(&args.config)?;
            let device = args.backend.device()?;
            let run = import_official_run(
                &args.checkpoint,
                &args.flags(),
                &args.data,
                &config,
                args.model.as_deref().unwrap_or(match args.feedback {
                    true => "feedback",
                    false => "transformer_seq",
                }),
                &args.out,
                &device,
            )?;
            (&args.checkpoint, run)
        }
    };
    println!(
        "{}: {} tensors read into {} (step 0, fresh optimizer state); evaluate with `mnemo eval {}`",
        file.display(),
        run.tensors,
        run.dir.path().display(),
        run.dir.path().display()
    );
    Ok(())
}
