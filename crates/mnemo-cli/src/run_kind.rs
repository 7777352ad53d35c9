//! Which kind of run a directory holds, read off its resolved `config.toml`: a language
//! model's, a translation model's or a reinforcement-learning policy's. A command given
//! another kind's run says so and names the commands that take it, instead of failing on the
//! config's fields.
use std::path::Path;

use anyhow::bail;
use mnemo_train::translation::{LoadedTranslationRun, load_translation_run};
use mnemo_train::{LoadedRun, load_run};

use crate::backend_arg::BackendArg;

/// The kinds of run `mnemo train` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// `[data]` of a language-modelling or algorithmic task.
    LanguageModel,
    /// `[data] task = "translation"`.
    Translation,
    /// `[task] kind = "rl"`.
    Rl,
}

impl RunKind {
    /// The kind of the run in `dir`; None when it has no readable `config.toml` (the
    /// command's own loading then names what is missing).
    pub fn of(dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
        Some(Self::of_config(&text))
    }

    /// The kind of run an experiment config's text (`mnemo train CONFIG`, or a run's
    /// `config.toml`) trains: `[task] kind = "rl"`, `[data] task = "translation"`, else a
    /// language model.
    pub fn of_config(text: &str) -> Self {
        if mnemo_rl::train::is_rl_config(text) {
            RunKind::Rl
        } else if mnemo_train::translation::is_translation_config(text) {
            RunKind::Translation
        } else {
            RunKind::LanguageModel
        }
    }

    fn name(self) -> &'static str {
        match self {
            RunKind::LanguageModel => "a language model's run",
            RunKind::Translation => "a translation run",
            RunKind::Rl => "a reinforcement-learning run",
        }
    }

    /// The commands that take a run of this kind.
    fn commands(self) -> &'static str {
        match self {
            RunKind::LanguageModel => "mnemo eval, generate, analyze, export, finetune",
            RunKind::Translation => "mnemo translate, eval",
            RunKind::Rl => "mnemo rollout",
        }
    }
}

/// The run's kind when it is one of `takes` (None when it cannot be told); else an error
/// naming the directory, its kind, what `mnemo <command>` takes and which commands take this
/// run.
pub fn expect(dir: &Path, command: &str, takes: &[RunKind]) -> anyhow::Result<Option<RunKind>> {
    match RunKind::of(dir) {
        Some(kind) if !takes.contains(&kind) => {
            let wanted: Vec<&str> = takes.iter().map(|k| k.name()).collect();
            bail!(
                "{}: {}; `mnemo {command}` takes {} (this run: {})",
                dir.display(),
                kind.name(),
                wanted.join(" or "),
                kind.commands()
            )
        }
        kind => Ok(kind),
    }
}

/// The language model's run in `dir` for `mnemo <command>` ([`expect`]), reloaded onto the
/// `--backend` device.
pub fn load_lm(dir: &Path, command: &str, backend: &BackendArg) -> anyhow::Result<LoadedRun> {
    expect(dir, command, &[RunKind::LanguageModel])?;
    Ok(load_run(dir, &backend.device()?)?)
}

/// The translation run in `dir` for `mnemo <command>` ([`expect`]), reloaded onto the
/// `--backend` device.
pub fn load_translation(
    dir: &Path,
    command: &str,
    backend: &BackendArg,
) -> anyhow::Result<LoadedTranslationRun> {
    expect(dir, command, &[RunKind::Translation])?;
    Ok(load_translation_run(dir, &backend.device()?)?)
}
