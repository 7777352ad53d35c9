//! Progress reporting: a bar on a terminal, plain lines otherwise, nothing when quiet.
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How training progress is shown on stderr.
#[derive(Debug)]
pub enum Progress {
    /// An indicatif bar with the task's figures (loss, accuracy, speed) and ETA (stderr is a
    /// terminal).
    Bar(ProgressBar),
    /// One plain line per log and evaluation (stderr is a file or pipe).
    Lines {
        /// Prefix of every line (the model name).
        label: String,
        /// Total steps.
        total: u64,
    },
    /// Nothing.
    Quiet,
}

impl Progress {
    /// The reporter for a run of `total` steps starting after step `start`.
    pub fn new(label: &str, start: u64, total: u64, quiet: bool) -> Self {
        if quiet {
            return Self::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Self::Lines {
                label: label.to_string(),
                total,
            };
        }
        let bar = ProgressBar::new(total)
            .with_position(start)
            .with_prefix(label.to_string());
        let style =
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        Self::Bar(bar)
    }

    /// A line about the run as a whole (what is trained where), shown unless quiet.
    pub fn announce(&self, line: &str) {
        match self {
            Self::Bar(bar) => bar.println(line),
            Self::Lines { .. } => eprintln!("{line}"),
            Self::Quiet => {}
        }
    }

    /// One training step is done; the bar shows `window`, the task's text of the running
    /// log window ([`Task::window_text`](crate::task::Task::window_text)).
    pub fn step(&self, step: u64, window: &str) {
        if let Self::Bar(bar) = self {
            bar.set_position(step);
            bar.set_message(window.to_string());
        }
    }

    /// A log window closed at `step`, described by `window`.
    pub fn log(&self, step: u64, window: &str, lr: f64) {
        if let Self::Lines { label, total } = self {
            eprintln!("{label} step {step}/{total} train {window} lr {lr:.3e}");
        }
    }

    /// An evaluation on `split` finished at `step`, described by `result`
    /// ([`Task::eval_text`](crate::task::Task::eval_text)).
    pub fn eval(&self, step: u64, split: &str, result: &str) {
        let line = format!("step {step} {split} {result}");
        match self {
            Self::Bar(bar) => bar.println(format!("{:>12} {line}", bar.prefix())),
            Self::Lines { label, .. } => eprintln!("{label} {line}"),
            Self::Quiet => {}
        }
    }

    /// Training is over (or was interrupted by an error).
    pub fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
