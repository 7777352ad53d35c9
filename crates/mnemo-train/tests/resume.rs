//! A run interrupted after a checkpoint and resumed ends exactly where an uninterrupted run
//! ends: same weights, same metrics (dropout on, so the per-step seeding is exercised too).
mod common;

use std::path::Path;

use common::{config, max_abs_diff, options, parameters, resume_options, tiny_toml, trained};
use mnemo_train::{ExperimentConfig, MetricsLog, TrainOptions, load_run, train};
use serde_json::Value;

/// The step, loss and curriculum stage (`statements`, `null` without a curriculum) of every
/// training line of a `metrics.jsonl`.
fn train_losses(path: &Path) -> Vec<(u64, f64, Value)> {
    MetricsLog::read(path)
        .unwrap()
        .iter()
        .filter(|v| v["split"] == "train")
        .map(|v| {
            let step = v["step"].as_u64().unwrap();
            (step, v["loss"].as_f64().unwrap(), v["statements"].clone())
        })
        .collect()
}

/// The lines of `split` in a `metrics.jsonl`.
fn lines(path: &Path, split: &str) -> Vec<Value> {
    let log = MetricsLog::read(path).unwrap();
    log.iter()
        .filter(|v| v["split"] == split)
        .cloned()
        .collect()
}

/// Train `model` of `config` uninterrupted, and again stopped after `stop` then resumed;
/// both must end identical. Returns the largest parameter difference (to be checked for 0
/// where bit-identity is asked) and the uninterrupted run's training lines.
fn check_resume(
    config: &ExperimentConfig,
    model: &str,
    stop: u64,
) -> (f32, Vec<(u64, f64, Value)>) {
    let steps = config.run.steps;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let whole = train(config, model, &options(a.path())).unwrap();
    assert_eq!((whole.steps, whole.finished), (steps, true));

    let first = TrainOptions {
        stop_after: Some(stop),
        ..options(b.path())
    };
    let first = train(config, model, &first).unwrap();
    assert_eq!((first.steps, first.finished), (stop, false));
    let resumed = train(config, model, &resume_options(b.path())).unwrap();
    assert_eq!((resumed.steps, resumed.finished), (steps, true));

    let (dir_a, dir_b) = (
        a.path().join("t").join(model),
        b.path().join("t").join(model),
    );
    let run_a = load_run(&dir_a, &common::cpu()).unwrap();
    let run_b = load_run(&dir_b, &common::cpu()).unwrap();
    assert_eq!(run_b.trainer.step, steps);
    let diff = max_abs_diff(&parameters(&run_a.model), &parameters(&run_b.model));
    assert!(diff < 1e-6, "{model}: parameters differ by {diff}");

    // Training moved the weights (the comparison is not vacuous).
    let device = mnemo_backend::device("cpu").unwrap();
    let fresh = mnemo_train::seeded(&device, config.run.seed, || {
        mnemo_train::initialize_params(run_a.model_config.init(&device))
    });
    assert!(max_abs_diff(&parameters(&fresh), &parameters(&run_a.model)) > 1e-4);

    for (x, y) in [(whole.valid, resumed.valid), (whole.test, resumed.test)] {
        assert!((x.loss - y.loss).abs() < 1e-6, "{x:?} vs {y:?}");
        assert_eq!(
            (x.accuracy, x.scored, x.tokens),
            (y.accuracy, y.scored, y.tokens)
        );
    }
    let (ta, tb) = (&run_a.trainer, &run_b.trainer);
    assert_eq!((ta.next_segment, ta.epoch), (tb.next_segment, tb.epoch));
    assert_eq!((ta.stage, ta.stage_steps), (tb.stage, tb.stage_steps));
    assert_eq!(ta.carried, tb.carried);

    // The metrics log reads as one run, with the same losses.
    let la = train_losses(&dir_a.join("metrics.jsonl"));
    let lb = train_losses(&dir_b.join("metrics.jsonl"));
    let log_every = config.run.log_every;
    let expected: Vec<u64> = (1..=steps).filter(|s| s % log_every == 0).collect();
    assert_eq!(la.iter().map(|l| l.0).collect::<Vec<_>>(), expected);
    assert_eq!(la.len(), lb.len());
    for ((_, x, stage_x), (_, y, stage_y)) in la.iter().zip(&lb) {
        assert!((x - y).abs() < 1e-6, "{la:?} vs {lb:?}");
        assert_eq!(stage_x, stage_y);
    }
    let stage_valid = |dir: &Path| lines(&dir.join("metrics.jsonl"), "stage_valid");
    assert_eq!(stage_valid(&dir_a), stage_valid(&dir_b));
    (diff, la)
}

#[test]
fn resumed_feedback_run_matches_an_uninterrupted_one() {
    // 6 steps, train log every 2 steps: the log window open at step 3 spans the interruption.
    let run = "steps = 6\neval_every = 3\ncheckpoint_every = 3\nlog_every = 2";
    check_resume(&config(&tiny_toml(run, 3e-3, 0.1)), "feedback", 3);
}

#[test]
fn resume_across_epochs_for_both_kinds() {
    // 8 training programs make an epoch of a few segments: 12 steps wrap it (resetting the
    // carried memory) before and after the interruption at step 7.
    let text = tiny_toml("steps = 12\ncheckpoint_every = 4\nlog_every = 3", 3e-3, 0.1)
        .replace("train_programs = 50", "train_programs = 8");
    let config = config(&text);
    for model in ["feedback", "transformer"] {
        check_resume(&config, model, 7);
    }
    let data = config.data.build().unwrap();
    let segments = data.train.len() / config.train.batch_size / config.train.segment_len;
    assert!(
        segments < 6,
        "an epoch of {segments} segments does not wrap twice in 12 steps"
    );
}

#[test]
fn resume_on_a_byte_corpus_for_both_kinds() {
    // 2,000 bytes: 1,799 training positions = 4 rows of 449 = 28 segments of 16, so 40 steps
    // wrap an epoch after the interruption at step 17; every position of valid/test is scored.
    let corpus = tempfile::tempdir().unwrap();
    let path = corpus.path().join("enwik8");
    let bytes: Vec<u8> = (0..2000u32)
        .map(|i| b"<page>abc def</page>\n"[(i % 21) as usize])
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let text = tiny_toml("steps = 40\ncheckpoint_every = 8\nlog_every = 5", 3e-3, 0.1);
    let (head, rest) = text.split_once("[data]").unwrap();
    let (_, tail) = rest.split_once("[train]").unwrap();
    let text = format!(
        "{head}[data]\ntask = \"bytes\"\npath = {:?}\n\n[train]{tail}",
        path.display().to_string()
    );
    let config = config(&text);
    let data = config.data.build().unwrap();
    assert_eq!(data.train.len(), 1799);
    for model in ["feedback", "transformer"] {
        check_resume(&config, model, 17);
    }
    let out = tempfile::tempdir().unwrap();
    let summary = train(&config, "transformer", &options(out.path())).unwrap();
    let bpc = summary.test.bpc.unwrap();
    assert!(
        (bpc - summary.test.loss / std::f64::consts::LN_2).abs() < 1e-12,
        "{:?}",
        summary.test
    );
    // 99 test positions in 4 rows of 24: all 96 scored (a tail segment of 8 included).
    assert_eq!(summary.test.scored, 96);
}

/// Performer layers redraw their random features every 2 steps: a resumed run redraws exactly
/// as an uninterrupted one, and the saved features are those of the last redraw (draw 3 after
/// step 6), not the initial draw.
#[test]
fn performer_feature_redraws_survive_a_resume() {
    let run = "steps = 6\neval_every = 3\ncheckpoint_every = 3\nlog_every = 2";
    let text = tiny_toml(run, 3e-3, 0.0).replace(
        "[models.transformer]",
        "[models.performer]\nkind = \"transformer\"\nd_model = 32\nn_layers = 2\nn_heads = 2\n\
         d_ff = 64\nspan = 16\nattention = { kind = \"performer\", features = 8, chunk = 4, \
         seed = 7, redraw_every = 2 }\n\n[models.transformer]",
    );
    let config = config(&text);
    check_resume(&config, "performer", 3);

    let out = tempfile::tempdir().unwrap();
    let run = trained(&config, "performer", &options(out.path()));
    let mnemo_models::Model::Transformer(model) = run.model else {
        panic!("a Transformer")
    };
    for (l, layer) in model.layers.iter().enumerate() {
        let Some(mnemo_core::AttentionVariant::Performer(p)) = &layer.attn_variant else {
            panic!("layer {l} is not a Performer layer")
        };
        let saved = mnemo_core::host::to_vec(p.features.val());
        let want = |draw| -> Vec<f32> {
            mnemo_core::performer::orthogonal_random_features(8, 16, 7 + l as u64, draw)
                .iter()
                .map(|&x| x as f32)
                .collect()
        };
        assert_eq!(saved, want(3), "layer {l}: not the features of draw 3");
        assert_ne!(saved, want(0), "layer {l}: features were never redrawn");
    }
}

/// Linear-attention and Performer layers that carry their fast weights across segments
/// (`carry = true`): the checkpoint saves the state carried into the next segment, so a resumed
/// run continues the stream exactly as an uninterrupted one (weights, losses, evaluation), also
/// across an epoch's reset.
#[test]
fn carried_fast_weights_survive_a_resume() {
    let run = "steps = 12\ncheckpoint_every = 4\nlog_every = 3";
    let model = |name: &str, attention: &str| {
        format!(
            "[models.{name}]\nkind = \"transformer\"\nd_model = 32\nn_layers = 2\nn_heads = 2\n\
             d_ff = 64\nspan = 16\nattention = {{ {attention}, carry = true }}\n\n"
        )
    };
    let text = tiny_toml(run, 3e-3, 0.1)
        .replace("train_programs = 50", "train_programs = 8")
        .replace(
            "[models.transformer]",
            &format!(
                "{}{}[models.transformer]",
                model("delta", "kind = \"linear\", update = \"delta\", chunk = 4"),
                model("performer", "kind = \"performer\", features = 8, chunk = 4")
            ),
        );
    let config = config(&text);
    for name in ["delta", "performer"] {
        check_resume(&config, name, 7);
        let out = tempfile::tempdir().unwrap();
        let run = trained(&config, name, &options(out.path()));
        let mnemo_models::StateSnapshot::TransformerCarried { layers } = &run.trainer.carried
        else {
            panic!("{name}: no fast weights saved: {:?}", run.trainer.carried)
        };
        assert!(layers.iter().all(|l| !l.is_empty()), "{name}: {layers:?}");
    }
}

/// An `init = "admin"` Transformer is profiled on its first training segment before step 1,
/// on a fresh start only: a resumed run (which loads ω from the checkpoint) equals an
/// uninterrupted one, and after one step at a negligible learning rate each block's ω is the
/// profiling's constant: 1 for the first block, then the running ratio, which grows
/// (r_i² ≈ r_{i-1}² + Var[f_i] past the first block). Un-profiled, every ω would be ≈ 1.
#[test]
fn admin_profiling_runs_on_a_fresh_start_only() {
    let admin = "[models.admin]\nkind = \"transformer\"\nd_model = 32\nn_layers = 2\n\
                 n_heads = 2\nd_ff = 64\nspan = 16\nplacement = \"post\"\ninit = \"admin\"\n\n\
                 [models.transformer]";
    let with_admin = |lr: f64| {
        let run = "steps = 4\ncheckpoint_every = 2\nlog_every = 2";
        config(&tiny_toml(run, lr, 0.1).replace("[models.transformer]", admin))
    };
    check_resume(&with_admin(3e-3), "admin", 2);

    let out = tempfile::tempdir().unwrap();
    let once = TrainOptions {
        stop_after: Some(1),
        ..options(out.path())
    };
    let run = trained(&with_admin(1e-9), "admin", &once);
    let mnemo_models::Model::Transformer(model) = run.model else {
        panic!("a Transformer")
    };
    let omegas: Vec<Vec<f32>> = model
        .layers
        .iter()
        .flat_map(|l| [&l.attn_admin, &l.ff_admin])
        .map(|a| mnemo_core::host::to_vec(a.as_ref().expect("admin blocks").omega.val()))
        .collect();
    let ratios: Vec<f32> = omegas
        .iter()
        .map(|omega| {
            let (lo, hi) = omega
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            assert!(hi - lo < 1e-5, "one ratio per block: {omega:?}");
            lo
        })
        .collect();
    assert!((ratios[0] - 1.0).abs() < 1e-5, "ω_1 = r_0 = 1: {ratios:?}");
    assert!(
        ratios[1..].windows(2).all(|w| w[1] > w[0] + 1e-3),
        "the running ratio grows: {ratios:?}"
    );
}

/// The tiny config with a curriculum: 5-statement programs for `steps[0]` steps,
/// 8-statement ones for `steps[1]`, then the 10 statements evaluated on; `extra` goes into
/// `[data.curriculum]`.
fn curriculum_toml(run: &str, steps: [u64; 2], extra: &str) -> String {
    let [first, second] = steps;
    tiny_toml(run, 3e-3, 0.1).replace(
        "seed = 2\n",
        &format!(
            "seed = 2\n\n[data.curriculum]\nstages = [{{ statements = 5, steps = {first} }}, \
             {{ statements = 8, steps = {second} }}]\n{extra}\n"
        ),
    )
}

/// The `statements` of each training line.
fn stages_of(lines: &[(u64, f64, Value)]) -> Vec<u64> {
    lines.iter().map(|l| l.2.as_u64().unwrap()).collect()
}

/// Interrupted at step 4, the first step of the second stage, and resumed: bit-identical
/// weights, the same stage in the checkpoint, the same losses and stages in the log; each
/// training line names the stage its window ended in.
#[test]
fn resume_in_the_middle_of_a_curriculum_is_exact() {
    let run = "steps = 10\neval_every = 5\ncheckpoint_every = 5\nlog_every = 1";
    let config = config(&curriculum_toml(run, [3, 3], ""));
    for model in ["feedback", "transformer"] {
        let (diff, lines) = check_resume(&config, model, 4);
        assert_eq!(diff, 0.0, "{model}: not bit-identical");
        assert_eq!(stages_of(&lines), [5, 5, 5, 8, 8, 8, 10, 10, 10, 10]);
    }
}

/// With `advance_at_accuracy` at the best accuracy the first stage reaches on its own
/// validation programs at steps 2, 4 and 6 (read from a run whose threshold, 1.0, is never
/// met), the second stage starts right after the first validation that reaches it, instead
/// of after step 8; a run interrupted right after that switch resumes exactly.
#[test]
fn a_stage_ends_when_its_own_validation_accuracy_reaches_the_threshold() {
    let run = "steps = 12\neval_every = 2\nlog_every = 1";
    let out = tempfile::tempdir().unwrap();
    let never = config(&curriculum_toml(run, [8, 2], "advance_at_accuracy = 1.0"));
    train(&never, "feedback", &options(out.path())).unwrap();
    let log = out.path().join("t/feedback/metrics.jsonl");
    let (lines_never, stage_valid) = (train_losses(&log), lines(&log, "stage_valid"));
    assert_eq!(
        stages_of(&lines_never),
        [vec![5; 8], vec![8; 2], vec![10; 2]].concat()
    );
    // Scored on each stage's own programs at steps 2–8 (stage 0) and 10 (stage 1); none in
    // the final stage.
    let at: Vec<_> = stage_valid
        .iter()
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["statements"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(at, [(2, 5), (4, 5), (6, 5), (8, 5), (10, 8)]);
    let accuracy = |v: &Value| v["accuracy"].as_f64().unwrap();
    let (best, reached) = (stage_valid[..3].iter())
        .map(|v| (v["step"].as_u64().unwrap(), accuracy(v)))
        .fold((0, 0.0), |best, x| if x.1 > best.1 { x } else { best });
    assert!(reached > 0.0 && reached < 1.0, "{stage_valid:?}");

    let met = config(&curriculum_toml(
        run,
        [8, 2],
        &format!("advance_at_accuracy = {reached:?}"),
    ));
    let (_, lines_met) = check_resume(&met, "feedback", best + 1);
    let switch = best as usize;
    assert_eq!(
        stages_of(&lines_met)[..switch + 1],
        [[5].repeat(switch), vec![8]].concat()
    );
    // Until the switch the runs are the same.
    assert_eq!(lines_met[..switch], lines_never[..switch]);
}
