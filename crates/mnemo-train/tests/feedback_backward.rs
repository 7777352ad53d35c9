//! The trainer's hand-written Feedback backward (`train.feedback_backward = "manual"`, the
//! default) trains to the same weights and losses as burn's autodiff, through warmup,
//! clipping, carried memory and an epoch wrap; a bad value names the field.
mod common;

use common::{config, max_abs_diff, options, parameters, tiny_toml};
use mnemo_train::{ExperimentConfig, FeedbackBackward, load_run, train};

#[test]
fn manual_and_autodiff_backward_train_the_same_feedback_model() {
    let text = tiny_toml("steps = 6\nlog_every = 2", 3e-3, 0.0)
        .replace("train_programs = 50", "train_programs = 8");
    let manual = config(&text);
    assert_eq!(manual.train.feedback_backward, FeedbackBackward::Manual);
    let auto = config(&text.replace(
        "segment_len = 16",
        "segment_len = 16\nfeedback_backward = \"autodiff\"",
    ));
    assert_eq!(auto.train.feedback_backward, FeedbackBackward::Autodiff);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = train(&manual, "feedback", &options(a.path())).unwrap();
    let sb = train(&auto, "feedback", &options(b.path())).unwrap();
    let ra = load_run(a.path().join("t").join("feedback"), &common::cpu()).unwrap();
    let rb = load_run(b.path().join("t").join("feedback"), &common::cpu()).unwrap();
    let diff = max_abs_diff(&parameters(&ra.model), &parameters(&rb.model));
    // Adam turns float-rounding differences of near-zero gradients into up to ~lr-sized steps;
    // a wrong gradient moves weights by ~lr·steps = 1.8e-2.
    assert!(diff < 1e-3, "weights after 6 steps differ by {diff}");
    assert!(
        (sa.valid.loss - sb.valid.loss).abs() < 1e-4,
        "{:?} vs {:?}",
        sa.valid,
        sb.valid
    );
    // Training moved the weights (the comparison is not vacuous).
    let device = mnemo_backend::device("cpu").unwrap();
    let fresh = mnemo_train::seeded(&device, manual.run.seed, || {
        mnemo_train::initialize_params(ra.model_config.init(&device))
    });
    assert!(max_abs_diff(&parameters(&fresh), &parameters(&ra.model)) > 1e-3);
}

#[test]
fn unknown_backward_names_the_field() {
    let text = tiny_toml("steps = 1", 1e-3, 0.0).replace(
        "segment_len = 16",
        "segment_len = 16\nfeedback_backward = \"fast\"",
    );
    let err = ExperimentConfig::from_toml_str(&text)
        .unwrap_err()
        .to_string();
    assert!(err.contains("train.feedback_backward"), "{err}");
}

struct Compare<'a> {
    a: &'a burn::optim::GradientsParams,
    b: &'a burn::optim::GradientsParams,
    worst: Vec<(f32, usize)>,
    i: usize,
}

impl burn::module::ModuleVisitor for Compare<'_> {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        let ga: burn::tensor::Tensor<D> = self.a.get(param.id).expect("manual grad");
        let gb: burn::tensor::Tensor<D> = self.b.get(param.id).expect("autodiff grad");
        let d = (ga.to_device(&gb.device()) - gb)
            .abs()
            .max()
            .into_scalar::<f32>();
        self.worst.push((d, self.i));
        self.i += 1;
    }
}

#[test]
fn masked_loss_gradients_match_autodiff() {
    use burn::module::Module;
    use burn::tensor::{Int, Tensor, TensorData};
    use mnemo_models::{FeedbackConfig, Model, ModelConfig};
    let device = mnemo_backend::test_device();
    let model = mnemo_train::seeded(&device, 4, || {
        mnemo_train::initialize_params(ModelConfig::Feedback(FeedbackConfig::tiny(9)).init(&device))
    });
    let Model::Feedback(fb) = &model else {
        unreachable!()
    };
    let (b, t) = (3, 6);
    let ids: Vec<i64> = (0..b * t).map(|i| ((i * 5 + 1) % 9) as i64).collect();
    let targets: Vec<u32> = (0..b * t).map(|i| ((i * 7 + 2) % 9) as u32).collect();
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), &device);
    let state = model.init_state(b, &device);
    let fb = fb
        .clone()
        .with_step_products(mnemo_train::step_products(&device));
    let manual =
        mnemo_train::train_feedback_segment(&fb, tokens.clone(), &targets, 8, state.clone());
    let out = model.forward_segment(tokens, state);
    let loss = mnemo_train::masked_cross_entropy(out.logits, &targets, 8);
    let auto = burn::optim::GradientsParams::from_grads(loss.loss.backward(), &model);
    let mut c = Compare {
        a: &manual.grads,
        b: &auto,
        worst: Vec::new(),
        i: 0,
    };
    model.visit(&mut c);
    let bad: Vec<_> = c.worst.iter().filter(|(d, _)| *d > 1e-5).collect();
    assert!(
        bad.is_empty(),
        "params (max diff, index) differing: {bad:?} of {}",
        c.worst.len()
    );
}
