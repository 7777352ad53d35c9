//! A reinforcement-learning run through the `mnemo` binary: `train` a few PPO updates of the
//! short T-maze config, `rollout` its test episodes; the commands of the other kinds of run
//! (`eval`, `generate`, `translate`) name the run's kind and `rollout` instead of failing on
//! its config's fields.
mod common;

use common::{assert_fails_naming, mnemo_in, stderr};
use serde_json::Value;

#[test]
fn train_rollout_and_eval_of_an_rl_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../experiments/rl/tmaze-short.toml"
    ))
    .unwrap()
    .replace("steps = 600 ", "steps = 4 ")
    .replace("eval_every = 200", "eval_every = 4")
    .replace("checkpoint_every = 200", "checkpoint_every = 4")
    .replace("eval_episodes = 100", "eval_episodes = 4");
    std::fs::write(dir.path().join("rl.toml"), config).unwrap();
    let train = ["train", "rl.toml", "--model", "feedback", "--quiet"];
    let out = mnemo_in(dir.path(), &train);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = "runs/rl-tmaze-short/feedback";
    let out = mnemo_in(dir.path(), &["rollout", run, "--episodes", "3", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["episodes"], 3, "{report}");
    for command in [
        &["eval", run][..],
        &["generate", run, "--prompt", "a"],
        &["translate", run],
    ] {
        let out = mnemo_in(dir.path(), command);
        let named = [
            run,
            "a reinforcement-learning run",
            "this run: mnemo rollout",
        ];
        assert_fails_naming(&out, &[&named[..], &[command[0]]].concat());
    }
}
