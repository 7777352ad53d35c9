//! RL training through the one trainer: the experiment configs load and their policies have
//! (nearly) equal parameter counts; a run stopped and resumed ends exactly as an uninterrupted
//! one (environments, their RNGs, the carried memories and a half-used rollout in the
//! checkpoint); the same seed gives the same run.
use std::path::Path;

use burn::module::Module;
use mnemo_core::host::parameters;
use mnemo_rl::policy::Policy;
use mnemo_rl::train::{RlConfig, RlSummary, RlTask, rollout_run, train_rl};
use mnemo_train::checkpoint::Checkpoint;
use mnemo_train::trainer::StateOf;
use mnemo_train::{MetricsLog, TrainOptions, initialize_params, seeded};

fn experiments() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/rl")
}

/// Every shipped RL experiment validates, and its policies differ in size by under 5%: the
/// comparison is between memory mechanisms, not model sizes.
#[test]
fn shipped_configs_load_with_equal_sized_policies() {
    let device = mnemo_backend::device("cpu").unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(experiments()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let config = RlConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let counts: Vec<(String, usize)> = config
            .model_names()
            .iter()
            .map(|name| {
                let single = config.for_policy(name).unwrap();
                (name.clone(), single.models[name].init(&device).num_params())
            })
            .collect();
        let min = counts.iter().map(|c| c.1).min().unwrap() as f64;
        let max = counts.iter().map(|c| c.1).max().unwrap() as f64;
        assert!(
            counts.len() >= 2,
            "{}: compare at least two policies",
            path.display()
        );
        assert!(
            max / min < 1.05,
            "{}: parameter counts {counts:?}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 2, "the tmaze and maze experiments");
}

/// A tiny T-maze run: 8 envs, rollouts of 8 steps, 2 epochs × 2 minibatches (4 updates per
/// rollout), 10 updates in all, so a stop after 6 falls in the middle of a rollout.
fn tiny(kind: &str) -> RlConfig {
    let text = format!(
        r#"
[task]
kind = "rl"
[run]
name = "t"
seed = 3
steps = 10
eval_every = 5
checkpoint_every = 5
log_every = 1
[env]
kind = "tmaze"
length = 3
n_envs = 8
seed = 1
[ppo]
rollout_len = 8
epochs = 2
minibatches = 2
eval_episodes = 12
[optim]
lr = 0.003
[models.p]
kind = "{kind}"
d_model = 16
n_layers = 2
n_heads = 2
d_ff = 32
span = 3
"#
    );
    RlConfig::from_toml_str(&text).unwrap()
}

fn options(out: &Path) -> TrainOptions {
    TrainOptions {
        quiet: true,
        ..TrainOptions::new(out, mnemo_backend::device("cpu").unwrap())
    }
}

fn train_losses(dir: &Path) -> Vec<f64> {
    MetricsLog::read(&dir.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter(|v| v["split"] == "train")
        .map(|v| v["loss"].as_f64().unwrap())
        .collect()
}

fn checkpoint(dir: &Path) -> (Policy, StateOf<RlTask>) {
    let path = dir.join("checkpoint.mnemo");
    let ckpt = Checkpoint::<StateOf<RlTask>>::read(&path).unwrap();
    let device = mnemo_backend::device("cpu").unwrap();
    let config = ckpt.trainer.model_config.clone();
    let model = ckpt.load_model(config.init(&device), &path).unwrap();
    (model, ckpt.trainer)
}

#[test]
fn a_resumed_run_ends_exactly_as_an_uninterrupted_one() {
    for kind in ["feedback", "transformer"] {
        let config = tiny(kind);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let whole: RlSummary = train_rl(&config, "p", &options(a.path())).unwrap();
        let first = TrainOptions {
            stop_after: Some(6),
            ..options(b.path())
        };
        let stopped = train_rl(&config, "p", &first).unwrap();
        assert_eq!((stopped.run.steps, stopped.run.finished), (6, false));
        let (_, mid) = checkpoint(&b.path().join("t/p"));
        let pending = mid
            .position
            .pending
            .as_ref()
            .expect("stopped inside a rollout");
        assert_eq!(
            pending.next, 2,
            "{kind}: 6 updates = one rollout and 2 of the next"
        );
        let resume = TrainOptions {
            resume: true,
            ..options(b.path())
        };
        let resumed = train_rl(&config, "p", &resume).unwrap();
        assert_eq!((resumed.run.steps, resumed.run.finished), (10, true));

        let (dir_a, dir_b) = (a.path().join("t/p"), b.path().join("t/p"));
        let (model_a, state_a) = checkpoint(&dir_a);
        let (model_b, state_b) = checkpoint(&dir_b);
        let (pa, pb) = (parameters(&model_a), parameters(&model_b));
        let diff = pa
            .iter()
            .zip(&pb)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff < 1e-6, "{kind}: parameters differ by {diff}");
        assert_eq!(
            state_a.position, state_b.position,
            "{kind}: environments, memories, rollout"
        );
        assert_eq!(
            train_losses(&dir_a),
            train_losses(&dir_b),
            "{kind}: training losses"
        );
        assert_eq!(
            whole.test_episodes, resumed.test_episodes,
            "{kind}: test episodes"
        );
        // Training moved the weights, so the comparison is not vacuous.
        let device = mnemo_backend::device("cpu").unwrap();
        let single = config.for_policy("p").unwrap();
        let fresh = seeded(&device, config.run.seed, || {
            initialize_params(single.models["p"].init(&device))
        });
        let moved = parameters(&fresh)
            .iter()
            .zip(&pa)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(moved > 1e-4, "{kind}: training must move the weights");
        // `mnemo rollout` on the run replays exactly the trainer's test episodes, and draws one.
        let report = rollout_run(&dir_a, 12, true, &device).unwrap();
        assert_eq!(
            report.summary, whole.test_episodes,
            "{kind}: rollout == trainer's test"
        );
        let png = std::fs::read(report.png.expect("rendered")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{kind}: a PNG");
        let ascii = report.ascii.expect("rendered");
        assert!(
            ascii.starts_with("t=0 action=") && ascii.contains("(end: return"),
            "{ascii}"
        );
        // And a second uninterrupted run with the same seed is the same run.
        let c = tempfile::tempdir().unwrap();
        let again = train_rl(&config, "p", &options(c.path())).unwrap();
        assert_eq!(
            again.test_episodes, whole.test_episodes,
            "{kind}: same seed, same run"
        );
        assert_eq!(train_losses(&c.path().join("t/p")), train_losses(&dir_a));
    }
}

/// Sizes that cannot fit are a config error naming the field, before anything is allocated
/// (no allocation abort).
#[test]
fn huge_sizes_are_config_errors_naming_the_field() {
    let base = tiny("feedback");
    let text = toml::to_string(&base).unwrap();
    for (from, to, field) in [
        ("d_model = 16", "d_model = 1000000000", "models.p.d_model"),
        ("d_ff = 32", "d_ff = 1000000000000", "models.p.d_ff"),
        (
            "rollout_len = 8",
            "rollout_len = 100000000000",
            "ppo.rollout_len",
        ),
    ] {
        assert!(text.contains(from), "{from} in {text}");
        let err = RlConfig::from_toml_str(&text.replace(from, to))
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
}
