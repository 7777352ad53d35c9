//! `mnemo data prepare wikitext --xml <file> --out <dir>`: build WikiText-format files from a
//! MediaWiki XML export (the "wikitext-mini" stand-in of `scripts/setup-data.sh`).
//!
//! `mnemo data prepare translation --pair en-de|en-es --root data/mt-root --out <dir>`: build
//! line-aligned translation corpora from unpacked Debian packages (`scripts/setup-data.sh
//! translation`).
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use mnemo_corpora::convert_mediawiki;
use mnemo_data::{Split, wikitext_file};

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
    }
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
