//! Bad configs, damaged checkpoints and diverging runs give errors that say what and where.
mod common;

use common::{config, error_naming, options, resume_options, tiny_toml};
use mnemo_train::{ExperimentConfig, TrainError, load_run, train};

#[test]
fn config_errors_name_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = tiny_toml("steps = 2", 1e-3, 0.0);
    for (name, from, to, named) in [
        (
            "unknown.toml",
            "grad_clip = 1.0",
            "grad_clip = 1.0\nmomentum = 0.9",
            &["optim.momentum", "unknown field"][..],
        ),
        (
            "type.toml",
            "segment_len = 16",
            "segment_len = \"16\"",
            &["train.segment_len", "invalid type"],
        ),
        (
            "model.toml",
            "span = 8",
            "span = 8.5",
            &["models.feedback.span"],
        ),
        (
            "range.toml",
            "batch_size = 4",
            "batch_size = 0",
            &["train.batch_size"],
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, good.replace(from, to)).unwrap();
        let msg = ExperimentConfig::load(&path).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("{}:", path.display())), "{msg}");
        for field in named {
            assert!(msg.contains(field), "{name}: {msg}");
        }
    }

    let missing = dir.path().join("nope.toml");
    let msg = ExperimentConfig::load(&missing).unwrap_err().to_string();
    assert!(
        msg.contains(&missing.display().to_string()) && msg.contains("not found"),
        "{msg}"
    );
}

/// Train 2 steps into a fresh directory and return (out dir, run dir).
fn trained() -> (tempfile::TempDir, std::path::PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let config = config(&tiny_toml("steps = 2", 1e-3, 0.0));
    train(&config, "feedback", &options(out.path())).unwrap();
    let run = out.path().join("t/feedback");
    (out, run)
}

#[test]
fn damaged_checkpoints_are_errors_naming_the_file() {
    let (out, run) = trained();
    let ckpt = run.join("checkpoint.mnemo");
    let bytes = std::fs::read(&ckpt).unwrap();
    assert!(load_run(&run, &common::cpu()).is_ok());

    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    std::fs::write(&ckpt, &flipped).unwrap();
    let path = ckpt.display().to_string();
    error_naming(load_run(&run, &common::cpu()), &[&path, "corrupt"]);
    // Resuming refuses the same file the same way.
    let config = config(&tiny_toml("steps = 4", 1e-3, 0.0));
    error_naming(
        train(&config, "feedback", &resume_options(out.path())),
        &["checkpoint.mnemo", "corrupt"],
    );

    std::fs::write(&ckpt, &bytes[..bytes.len() / 3]).unwrap();
    error_naming(load_run(&run, &common::cpu()), &[&path, "truncated"]);

    std::fs::write(&ckpt, b"").unwrap();
    assert!(
        load_run(&run, &common::cpu())
            .unwrap_err()
            .to_string()
            .contains("truncated")
    );
}

#[test]
fn existing_runs_are_not_overwritten_and_mismatched_ones_not_resumed() {
    let (out, run) = trained();
    let config = config(&tiny_toml("steps = 4", 1e-3, 0.0));
    let err = train(&config, "feedback", &options(out.path())).unwrap_err();
    assert!(matches!(err, TrainError::RunExists { .. }), "{err}");
    assert!(err.to_string().contains("--resume"), "{err}");

    let other = common::config(
        &tiny_toml("steps = 4", 1e-3, 0.0).replace("d_ff = 64\nspan = 8", "d_ff = 48\nspan = 8"),
    );
    error_naming(
        train(&other, "feedback", &resume_options(out.path())),
        &["does not match", "models.feedback"],
    );
    // The refused attempt left the run as it was.
    assert_eq!(load_run(&run, &common::cpu()).unwrap().trainer.step, 2);

    // The intact run still resumes.
    let summary = train(&config, "feedback", &resume_options(out.path())).unwrap();
    assert_eq!(summary.steps, 4);
}

#[test]
fn diverging_lr_stops_and_never_saves_non_finite_weights() {
    let out = tempfile::tempdir().unwrap();
    let config = config(
        &tiny_toml("steps = 8\ncheckpoint_every = 1\neval_every = 1", 1e30, 0.0)
            .replace("warmup_steps = 2", "warmup_steps = 0")
            .replace("grad_clip = 1.0", "grad_clip = 0.0"),
    );
    let err = train(&config, "feedback", &options(out.path())).unwrap_err();
    let TrainError::NonFinite { step, ref kept, .. } = err else {
        panic!("expected a non-finite error, got {err}")
    };
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("step {step}:")) && msg.contains("not finite"),
        "{msg}"
    );
    let run_dir = out.path().join("t/feedback");
    match kept {
        Some((kept_step, kept_path)) => {
            assert_eq!(*kept_step, step - 1);
            assert!(
                msg.contains(&format!("step {kept_step}"))
                    && msg.contains(&kept_path.display().to_string()),
                "{msg}"
            );
            // What is on disk is that step, finite, and readable.
            let run = load_run(&run_dir, &common::cpu()).unwrap();
            assert_eq!(run.trainer.step, step - 1);
            let weights = common::parameters(&run.model);
            assert!(weights.iter().all(|w| w.is_finite()), "NaN weights saved");
        }
        None => {
            assert_eq!(step, 1);
            assert!(!run_dir.join("checkpoint.mnemo").exists());
        }
    }
    assert!(!run_dir.join("checkpoint.mnemo.tmp").exists());
}

#[test]
fn unknown_backend_and_missing_run_dir() {
    let out = tempfile::tempdir().unwrap();
    let config = config(&tiny_toml("steps = 1", 1e-3, 0.0));
    // Devices are opened by the caller, which reports an unknown backend.
    let msg = mnemo_backend::autodiff_device("tpu")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("unknown backend `tpu`") && msg.contains("cpu"),
        "{msg}"
    );
    let msg = load_run(out.path().join("nothing"), &common::cpu())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("nothing") && msg.contains("not a run directory"),
        "{msg}"
    );
    let msg = train(&config, "lstm", &options(out.path()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no model named `lstm`"), "{msg}");
}
