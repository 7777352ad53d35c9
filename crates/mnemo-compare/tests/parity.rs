//! Backend parity: one Feedback Transformer step and one Transformer step of the smoke config
//! (forward logits, masked cross-entropy, gradients of every parameter) on each backend, from
//! the same weights and batch, against the reference CPU backend (`cpu`), within
//! [`Tolerance::DEFAULT`] (relative L2 error: logits 1e-5, loss 1e-5, gradients 1e-3).
//!
//! A backend's tests run when its feature is compiled in and are reported as ignored
//! otherwise:
//!
//! ```text
//! cargo test --release -p mnemo-compare --test parity                      # cpu only
//! cargo test --release -p mnemo-compare --test parity --features wgpu,tch  # + wgpu, tch
//! scripts/test-backends.sh                                                 # what is set up
//! ```
use mnemo_compare::{Agreement, Problem, Timing, Tolerance, run_backend};
use mnemo_train::ExperimentConfig;

const REFERENCE: &str = "cpu";

fn smoke(seed: u64) -> ExperimentConfig {
    let text = include_str!("../../../experiments/smoke/tiny.toml").replace(
        "[run]\nname = \"smoke-tiny\"\nseed = 1",
        &format!("[run]\nname = \"smoke-tiny\"\nseed = {seed}"),
    );
    ExperimentConfig::from_toml_str(&text).expect("the smoke config parses")
}

/// `backend`'s step on `model` agrees with the reference's within the stated tolerance.
fn assert_parity(backend: &str, model: &str) {
    let problem = Problem::from_experiment(&smoke(1), model, REFERENCE).unwrap();
    let reference = run_backend(&problem, REFERENCE, Timing::NONE).unwrap();
    let run = run_backend(&problem, backend, Timing::NONE).unwrap();
    let agreement = Agreement::between(&run, &reference);
    eprintln!(
        "{backend} ({}) vs {REFERENCE}, {model}: {agreement:?}",
        run.device
    );
    let violations = agreement.violations(&Tolerance::DEFAULT);
    assert!(
        violations.is_empty(),
        "{backend} disagrees with {REFERENCE} on {model} ({violations:?}): {agreement:?}"
    );
    // Not vacuous: there is a loss to agree on and gradients reach the parameters.
    assert!(
        reference.values.loss > 0.1,
        "loss {}",
        reference.values.loss
    );
    let nonzero = run.values.grads.iter().filter(|g| **g != 0.0).count();
    assert!(
        nonzero * 2 > run.values.grads.len(),
        "most gradients are non-zero: {nonzero}"
    );
}

macro_rules! parity_tests {
    ($($name:ident: $backend:literal, $model:literal, $reason:literal;)*) => {$(
        #[test]
        #[cfg_attr(not(feature = $backend), ignore = $reason)]
        fn $name() {
            assert_parity($backend, $model);
        }
    )*};
}

parity_tests! {
    ndarray_feedback_step: "ndarray", "feedback", "needs --features ndarray";
    ndarray_transformer_step: "ndarray", "transformer", "needs --features ndarray";
    wgpu_feedback_step: "wgpu", "feedback", "needs --features wgpu (and scripts/setup-wgpu.sh)";
    wgpu_transformer_step: "wgpu", "transformer", "needs --features wgpu (and scripts/setup-wgpu.sh)";
    vulkan_feedback_step: "vulkan", "feedback", "needs --features vulkan (and scripts/setup-wgpu.sh)";
    vulkan_transformer_step: "vulkan", "transformer", "needs --features vulkan (and scripts/setup-wgpu.sh)";
    tch_feedback_step: "tch", "feedback", "needs --features tch (and scripts/setup-tch.sh)";
    tch_transformer_step: "tch", "transformer", "needs --features tch (and scripts/setup-tch.sh)";
    cuda_feedback_step: "cuda", "feedback", "needs --features cuda and an NVIDIA GPU";
    cuda_transformer_step: "cuda", "transformer", "needs --features cuda and an NVIDIA GPU";
}

/// The reference against itself: the weights survive the copy through bytes exactly and the
/// step is deterministic, so every distance is exactly zero.
#[test]
fn reference_against_itself_is_exact() {
    for model in ["feedback", "transformer"] {
        let problem = Problem::from_experiment(&smoke(1), model, REFERENCE).unwrap();
        let a = run_backend(&problem, REFERENCE, Timing::NONE).unwrap();
        let b = run_backend(&problem, REFERENCE, Timing::NONE).unwrap();
        assert_eq!(a.values, b.values, "{model}");
        let device = mnemo_backend::device(REFERENCE).unwrap();
        let loaded = problem.load_model(REFERENCE, &device).unwrap();
        let num_params = burn::module::Module::num_params(&loaded);
        assert_eq!(
            a.values.grads.len(),
            num_params,
            "{model}: one gradient per parameter"
        );
        assert_eq!(a.values.updated.len(), num_params, "{model}");
        assert_ne!(a.values.grads, vec![0.0; num_params], "{model}");
    }
}

/// The comparison is not blind: other initial weights (another seed) put logits, loss and
/// gradients far outside the tolerance.
#[test]
fn different_weights_are_caught() {
    for model in ["feedback", "transformer"] {
        let one = Problem::from_experiment(&smoke(1), model, REFERENCE).unwrap();
        let mut two = Problem::from_experiment(&smoke(2), model, REFERENCE).unwrap();
        assert_ne!(one.weights, two.weights);
        // Same batch, other weights.
        two.segment = one.segment.clone();
        let a = run_backend(&one, REFERENCE, Timing::NONE).unwrap();
        let b = run_backend(&two, REFERENCE, Timing::NONE).unwrap();
        let agreement = Agreement::between(&b, &a);
        assert_eq!(
            agreement.violations(&Tolerance::DEFAULT),
            ["logits", "loss", "gradients"],
            "{model}: {agreement:?}"
        );
    }
}
