//! `mnemo rollout`: run a trained RL policy for N test episodes; print success rate, return and
//! goals, and with `--render` one episode as ASCII frames (and a PNG strip in the run
//! directory).
use std::path::PathBuf;

use clap::Args;

use crate::backend_arg::BackendArg;
use crate::run_kind::{self, RunKind};
use mnemo_rl::train::rollout_run;
use serde_json::json;

/// Arguments of `mnemo rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// Run directory of an RL run (e.g. runs/rl-tmaze/feedback).
    run: PathBuf,
    /// Test episodes to run.
    #[arg(long, default_value_t = 100)]
    episodes: usize,
    /// Also play one episode, print its frames and write episode.png into the run directory.
    #[arg(long)]
    render: bool,
    #[command(flatten)]
    backend: BackendArg,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Run the episodes and report.
pub fn run(args: &RolloutArgs) -> anyhow::Result<()> {
    if args.episodes == 0 {
        anyhow::bail!("--episodes must be at least 1");
    }
    run_kind::expect(&args.run, "rollout", &[RunKind::Rl])?;
    let device = args.backend.device()?;
    let report = rollout_run(&args.run, args.episodes, args.render, &device)?;
    if let Some(ascii) = &report.ascii {
        println!("{ascii}");
    }
    let s = &report.summary;
    if args.json {
        println!(
            "{}",
            json!({
                "run": args.run, "episodes": s.episodes, "return": s.mean_return,
                "success": s.success_rate, "goals": s.mean_goals, "episode_len": s.mean_length,
                "png": report.png,
            })
        );
    } else {
        let success = s
            .success_rate
            .map_or("-".to_string(), |r| format!("{:.1}%", 100.0 * r));
        println!(
            "{}: {} episodes, success {success}, return {:.3}, goals/episode {:.2}, length {:.1}",
            args.run.display(),
            s.episodes,
            s.mean_return,
            s.mean_goals,
            s.mean_length
        );
        if let Some(png) = &report.png {
            println!("episode frames: {}", png.display());
        }
    }
    Ok(())
}
