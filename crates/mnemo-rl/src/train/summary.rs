//! `summary.json` of an RL run, and the results table of an RL experiment.
use mnemo_train::RunSummary;
use serde::{Deserialize, Serialize};

use crate::env::EpisodeSummary;

/// What an RL run reports at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RlSummary {
    /// What every run reports (validation/test metrics: `accuracy` = success rate, `loss` =
    /// −mean return).
    #[serde(flatten)]
    pub run: RunSummary,
    /// Environment steps of training.
    pub env_steps: u64,
    /// Training episodes finished.
    pub train_episodes: u64,
    /// The test episodes (return, length, success rate, goals).
    pub test_episodes: EpisodeSummary,
}

/// A Markdown table of RL runs: success rate, return and goals per episode on the test
/// environments, with size and speed.
pub fn rl_results_table(summaries: &[RlSummary]) -> String {
    let mut out = String::from(
        "| model | kind | params | updates | env steps | train time | env steps/s | test success | test return | test goals/episode |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in summaries {
        let r = &s.run;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} s | {:.0} | {} | {:.3} | {:.2} |\n",
            r.model,
            r.kind,
            r.params,
            r.steps,
            s.env_steps,
            r.train_time_s,
            r.tokens_per_s,
            s.test_episodes
                .success_rate
                .map_or("-".to_string(), |x| format!("{:.1}%", 100.0 * x)),
            s.test_episodes.mean_return,
            s.test_episodes.mean_goals,
        ));
    }
    out
}
