//! Fine-tuning from a trained run (`mnemo_train::finetune`): weights carried over token by
//! token, gradual unfreezing leaves the lower groups exactly as pretrained, the ℓ∞ ball of
//! constrained fine-tuning holds, a stopped fine-tuning run resumes exactly, and a changed
//! architecture is refused naming the field.
mod common;

use common::{config, error_naming, options, resume_options, tiny_toml};
use mnemo_train::layer_groups::params_by_group;
use mnemo_train::{ExperimentConfig, TrainOptions, finetune, load_run, train};

/// The pretraining config: 3-variable programs, the Feedback model only.
fn pretrain() -> ExperimentConfig {
    let mut c = config(&tiny_toml("steps = 6", 3e-3, 0.0));
    c.models.retain(|name, _| name == "feedback");
    c
}

/// The fine-tuning config: 5-variable programs (two new variable tokens), another run name,
/// and `[optim]` fine-tuning options.
fn target(optim: &str) -> ExperimentConfig {
    let text = tiny_toml("steps = 6\ncheckpoint_every = 3", 3e-3, 0.0)
        .replace("name = \"t\"", "name = \"ft\"")
        .replace("statements = 10", "statements = 10\nvariables = 5")
        .replace("warmup_steps = 2\n", &format!("{optim}\n"));
    let mut c = config(&text);
    c.models.retain(|name, _| name == "feedback");
    c
}

/// Largest |a − b| between two runs' parameters at the same path, per layer group (0 =
/// embedding, rows of shared tokens only: the first `shared` rows of the source order are
/// compared through the vocabularies), as (path, group, max change).
fn changes(
    before: &[(String, usize, Vec<f32>)],
    after: &[(String, usize, Vec<f32>)],
) -> Vec<(String, usize, f32)> {
    before
        .iter()
        .zip(after)
        .filter(|(b, a)| b.2.len() == a.2.len())
        .map(|(b, a)| {
            assert_eq!(b.0, a.0);
            let moved =
                b.2.iter()
                    .zip(&a.2)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max);
            (b.0.clone(), b.1, moved)
        })
        .collect()
}

#[test]
fn top_group_moves_within_the_ball_and_the_rest_stays_pretrained() {
    let dir = tempfile::tempdir().unwrap();
    train(&pretrain(), "feedback", &options(dir.path())).unwrap();
    let source = dir.path().join("t/feedback");
    // Only the top group trains in 6 steps (unfreeze_every = 100), under max_change 0.002.
    let optim = "decay = \"slanted_triangular\"\nlayer_lr_decay = 2.6\nunfreeze_every = 100\n\
                 max_change = 0.002";
    let summary = finetune(&target(optim), "feedback", &source, &options(dir.path())).unwrap();
    assert!(summary.finished);
    let device = common::cpu();
    let old = load_run(&source, &device).unwrap();
    let new = load_run(dir.path().join("ft/feedback"), &device).unwrap();
    assert_eq!(
        new.vocab.len(),
        old.vocab.len() + 2,
        "p and r are new tokens"
    );
    let (before, after) = (params_by_group(&old.model), params_by_group(&new.model));
    let top = after.iter().map(|p| p.1).max().unwrap();
    let moved = changes(&before, &after);
    assert!(!moved.is_empty());
    for (path, group, change) in &moved {
        if *group == top {
            // The ball's edge w₀ ± 0.002 is rounded to f32: allow one rounding at |w| ≲ 2.
            assert!(*change <= 0.002 + 2.0 * f32::EPSILON, "{path}: {change}");
        } else {
            assert_eq!(*change, 0.0, "{path} is frozen");
        }
    }
    assert!(
        moved.iter().any(|(_, g, c)| *g == top && *c > 0.0),
        "the top group trained: {moved:?}"
    );
    // Vocabulary-indexed parameters: every shared token's row is the pretrained one.
    let emb = |run: &mnemo_train::LoadedRun| {
        params_by_group(&run.model)
            .into_iter()
            .find(|p| p.1 == 0)
            .unwrap()
            .2
    };
    let (e_old, e_new) = (emb(&old), emb(&new));
    let d = e_old.len() / old.vocab.len();
    for (i, token) in old.vocab.tokens().iter().enumerate() {
        let j = new.vocab.id(token).unwrap() as usize;
        assert_eq!(
            e_new[j * d..(j + 1) * d],
            e_old[i * d..(i + 1) * d],
            "{token}"
        );
    }
}

#[test]
fn a_stopped_finetuning_run_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    train(&pretrain(), "feedback", &options(dir.path())).unwrap();
    let source = dir.path().join("t/feedback");
    let optim = "layer_lr_decay = 2.0\nunfreeze_every = 2\nmax_change = 0.003";
    let whole = tempfile::tempdir().unwrap();
    finetune(&target(optim), "feedback", &source, &options(whole.path())).unwrap();
    let parts = tempfile::tempdir().unwrap();
    let stop = TrainOptions {
        stop_after: Some(3),
        ..options(parts.path())
    };
    finetune(&target(optim), "feedback", &source, &stop).unwrap();
    finetune(
        &target(optim),
        "feedback",
        &source,
        &resume_options(parts.path()),
    )
    .unwrap();
    let device = common::cpu();
    let a = load_run(whole.path().join("ft/feedback"), &device).unwrap();
    let b = load_run(parts.path().join("ft/feedback"), &device).unwrap();
    for (x, y) in params_by_group(&a.model)
        .iter()
        .zip(params_by_group(&b.model))
    {
        assert_eq!((&x.0, x.1), (&y.0, y.1));
        assert!(x.2 == y.2, "{} differs after the resume", x.0);
    }
}

#[test]
fn another_architecture_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    train(&pretrain(), "feedback", &options(dir.path())).unwrap();
    let source = dir.path().join("t/feedback");
    let mut wider = target("");
    let text = toml::to_string(&wider.models["feedback"]).unwrap();
    wider.models.insert(
        "feedback".into(),
        toml::from_str(&text.replace("d_ff = 64", "d_ff = 96")).unwrap(),
    );
    error_naming(
        finetune(&wider, "feedback", &source, &options(dir.path())),
        &["models.feedback.d_ff", "t/feedback"],
    );
    error_naming(
        finetune(
            &target(""),
            "feedback",
            &dir.path().join("nope"),
            &options(dir.path()),
        ),
        &["nope"],
    );
}
