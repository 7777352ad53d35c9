//! `mnemo data prepare wikitext --xml <file> --out <dir>`: build WikiText-format files from a
//! MediaWiki XML export (the "wikitext-mini" stand-in of `scripts/setup-data.sh`).
//!
//! `mnemo data prepare translation --pair en-de|en-es --root data/mt-root --out <dir>`: build
//! line-aligned translation corpora from unpacked Debian packages (`scripts/setup-data.sh
//! translation`).
//!
//! `mnemo data generate code-execution --variables 3 --statements 100 --seed 0 --out <dir>`:
//! write the code-execution task of Fan et al. 2020 ("Addressing Some Limitations of
//! Transformers with Feedback Memory") in the official format of its code
//! (`{train,valid,test}.txt` + `.txt.labels`, one program per line, labels aligned token for
//! token), readable by `task = "labelled_text"` and by the reference's `main.py`.
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use mnemo_corpora::convert_mediawiki;
use mnemo_data::{CodeExecConfig, CodeExecStyle, Split, wikitext_file, write_labelled_text};

/// Arguments of `mnemo data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

/// The `mnemo data` subcommands.
#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Convert raw data into a format the loaders read.
    #[command(subcommand)]
    Prepare(PrepareCommand),
    /// Generate a seeded task and write it in a file format.
    #[command(subcommand)]
    Generate(GenerateCommand),
}

/// What `mnemo data generate` can write.
#[derive(Debug, Subcommand)]
enum GenerateCommand {
    /// The code-execution task -> {train,valid,test}.txt + .txt.labels (the official format of
    /// the Feedback Transformer's code; read it back with `task = "labelled_text"`).
    CodeExecution(CodeExecutionArgs),
}

/// Arguments of `mnemo data generate code-execution` (defaults: the paper's sizes).
#[derive(Debug, Args)]
struct CodeExecutionArgs {
    /// Number of variables: 3 or 5.
    #[arg(long, default_value_t = 3)]
    variables: usize,
    /// Statements per program.
    #[arg(long, default_value_t = 100)]
    statements: usize,
    /// Programs in train.txt.
    #[arg(long, default_value_t = 10_000)]
    programs_train: usize,
    /// Programs in valid.txt.
    #[arg(long, default_value_t = 1000)]
    programs_valid: usize,
    /// Programs in test.txt.
    #[arg(long, default_value_t = 1000)]
    programs_test: usize,
    /// Seed; the same seed and sizes give the programs of `task = "code_execution"`.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Generator: official (the reference's algorithm) or front_loaded.
    #[arg(long, default_value_t = CodeExecStyle::Official)]
    style: CodeExecStyle,
    /// Directory to write the six files into (created if needed).
    #[arg(long)]
    out: PathBuf,
}

/// What `mnemo data prepare` can build.
#[derive(Debug, Subcommand)]
enum PrepareCommand {
    /// MediaWiki XML export -> wiki.{train,valid,test}.tokens (WikiText format, split by
    /// article 90/5/5, `<unk>` for train count < 3).
    Wikitext(WikitextArgs),
    /// Debian packages -> line-aligned translation corpora ({train,valid,test}.{en,xx} +
    /// manifest.json): En–De from gettext catalogs, DDTP and the Debian Administrator's
    /// Handbook, En–Es from the KJV and Reina-Valera 1909 Bibles.
    Translation(TranslationArgs),
}

/// Arguments of `mnemo data prepare translation`.
#[derive(Debug, Args)]
struct TranslationArgs {
    /// Language pair: en-de or en-es.
    #[arg(long)]
    pair: String,
    /// Unpacked packages + ddtp/Translation-{en,de} (scripts/setup-data.sh: data/mt-root).
    #[arg(long)]
    root: PathBuf,
    /// Output directory for this pair, e.g. data/translation/en-de (created).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the held-out validation packages (en-de only).
    #[arg(long, default_value_t = mnemo_corpora::prepare::DEFAULT_SEED)]
    seed: u64,
}

/// Arguments of `mnemo data prepare wikitext`.
#[derive(Debug, Args)]
struct WikitextArgs {
    /// The MediaWiki XML export (plain .xml, not compressed).
    #[arg(long)]
    xml: PathBuf,
    /// Directory to write wiki.{train,valid,test}.tokens into (created if needed).
    #[arg(long)]
    out: PathBuf,
}

/// Run `mnemo data ...`.
pub fn run(args: &DataArgs) -> anyhow::Result<()> {
    match &args.command {
        DataCommand::Prepare(PrepareCommand::Wikitext(args)) => prepare_wikitext(args),
        DataCommand::Prepare(PrepareCommand::Translation(args)) => prepare_translation(args),
        DataCommand::Generate(GenerateCommand::CodeExecution(args)) => generate_code(args),
    }
}

/// The `[data]` section `args` stands for.
fn code_config(args: &CodeExecutionArgs) -> CodeExecConfig {
    CodeExecConfig {
        variables: args.variables,
        statements: args.statements,
        train_programs: args.programs_train,
        valid_programs: args.programs_valid,
        test_programs: args.programs_test,
        seed: args.seed,
        style: args.style,
        curriculum: None,
    }
}

/// `data.x_programs` (a config field) as the flag that sets it, `--programs-x`.
fn as_flag(message: &str) -> String {
    let mut message = message.to_owned();
    for split in Split::ALL {
        let name = split.name();
        let field = format!("data.{name}_programs");
        message = message.replace(&field, &format!("--programs-{name}"));
    }
    message
        .replace("data.variables", "--variables")
        .replace("data.statements", "--statements")
}

fn generate_code(args: &CodeExecutionArgs) -> anyhow::Result<()> {
    let config = code_config(args);
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("{}", as_flag(&e.to_string())))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create the directory", args.out.display()))?;
    let mut lines = Vec::new();
    for split in Split::ALL {
        let n = write_labelled_text(&args.out, split, config.examples(split), "--out")?;
        lines.push(n.to_string());
    }
    println!(
        "wrote {} ({{train,valid,test}}.txt + .labels, programs {}; {} variables, {} statements, \
         seed {}, style {}; read with [data] task = \"labelled_text\")",
        args.out.display(),
        lines.join("/"),
        args.variables,
        args.statements,
        args.seed,
        args.style
    );
    Ok(())
}

fn prepare_translation(args: &TranslationArgs) -> anyhow::Result<()> {
    let pair: mnemo_corpora::Pair = args.pair.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = mnemo_corpora::prepare_pair(pair, &args.root, &args.out, args.seed)?;
    println!(
        "wrote {} (pairs train/valid/test: {}/{}/{}; see manifest.json)",
        args.out.display(),
        report.splits.train,
        report.splits.valid,
        report.splits.test
    );
    Ok(())
}

fn prepare_wikitext(args: &WikitextArgs) -> anyhow::Result<()> {
    let xml = std::fs::read(&args.xml).with_context(|| format!("--xml {}", args.xml.display()))?;
    let xml = String::from_utf8(xml)
        .map_err(|e| anyhow::anyhow!("--xml {}: not UTF-8: {e}", args.xml.display()))?;
    let splits = convert_mediawiki(&xml)
        .map_err(|reason| anyhow::anyhow!("--xml {}: {reason}", args.xml.display()))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create the directory", args.out.display()))?;
    for (split, text) in [
        (Split::Train, &splits.train),
        (Split::Valid, &splits.valid),
        (Split::Test, &splits.test),
    ] {
        write_atomic(&wikitext_file(&args.out, split), text)?;
    }
    let [train, valid, test] = splits.articles;
    let tokens =
        |text: &str| -> usize { text.lines().map(|l| l.split_whitespace().count() + 1).sum() };
    println!(
        "wrote {} (articles train/valid/test: {train}/{valid}/{test}; tokens with <eos>: {}/{}/{})",
        args.out.display(),
        tokens(&splits.train),
        tokens(&splits.valid),
        tokens(&splits.test),
    );
    Ok(())
}

/// Write through a temporary file and rename, so an interrupted run leaves no partial file.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tokens.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("--out: {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("--out: {}", path.display()))?;
    Ok(())
}
