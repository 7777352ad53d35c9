//! The Feedback core driven as a reinforcement-learning policy would drive it: float vectors in
//! (no embedding, no token ids), one step at a time with the memory carried, against the
//! segment forward; and the core's manual backward, input gradient included, against autodiff.
mod common;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use common::{assert_close, assert_differs, max_abs_diff, perturbed};
use mnemo_core::{NormKind, NormPlacement, seeded};
use mnemo_models::StepProducts;
use mnemo_models::feedback::{
    FeedbackCore, FeedbackCoreConfig, MemorySource, NoManualHook, no_hook,
};

fn config() -> FeedbackCoreConfig {
    FeedbackCoreConfig {
        d_model: 16,
        n_layers: 3,
        n_heads: 2,
        d_ff: 24,
        span: 4,
        dropout: 0.0,
        norm: NormKind::Layer,
        placement: NormPlacement::Pre,
        share_kv: true,
        memory: MemorySource::Mix,
        options: Default::default(),
        adaptive_span: None,
    }
}

fn configs() -> Vec<(&'static str, FeedbackCoreConfig)> {
    vec![
        ("shared kv", config()),
        (
            "per-layer kv",
            FeedbackCoreConfig {
                share_kv: false,
                ..config()
            },
        ),
        (
            "post-norm rms",
            FeedbackCoreConfig {
                placement: NormPlacement::Post,
                norm: NormKind::Rms,
                ..config()
            },
        ),
        (
            "top-layer memory",
            FeedbackCoreConfig {
                memory: MemorySource::Top,
                ..config()
            },
        ),
    ]
}

/// A core with non-uniform mixing weights.
fn core(config: FeedbackCoreConfig, seed: u64, device: &Device) -> FeedbackCore {
    let core = seeded::reinit(config.init(device), seed);
    let autodiff = core.mix.val().is_autodiff();
    let mix = core
        .mix
        .clone()
        .map(|w| (w + seeded::normal([config.n_layers + 1], seed + 1, device)).detach());
    let mix = if autodiff {
        mix.map(|w| w.require_grad())
    } else {
        mix
    };
    FeedbackCore { mix, ..core }
}

/// Observations of 3 rows over two segments of 7 steps (longer than the span, so the
/// step-by-step memories move to the front and segments carry memories across).
#[test]
fn stepping_from_vectors_equals_the_segment_forward() {
    let device = mnemo_backend::test_device().inner();
    for (name, config) in configs() {
        let core = core(config, 3, &device);
        let (b, t_len, d) = (3, 7, config.d_model);
        let zeros = Tensor::zeros([b, config.span, d], &device);
        // Segments, the memory carried as vectors between them.
        let mut carried = zeros.clone();
        let mut by_segment = Vec::new();
        for seg in 0..2 {
            let x = seeded::normal([b, t_len, d], 10 + seg, &device);
            let (y, memory) = core.forward(x, core.memory(carried, t_len), no_hook());
            carried = memory.memories();
            by_segment.push(y);
        }
        let by_segment = Tensor::cat(by_segment, 1);
        // Steps, from a fresh (folded) memory and from zero memories stored with little room.
        for (label, mut memory) in [
            ("folded", core.fresh_memory(b, &device)),
            ("stored", core.memory(zeros.clone(), 1)),
        ] {
            let mut ys = Vec::new();
            for seg in 0..2 {
                let x = seeded::normal([b, t_len, d], 10 + seg, &device);
                for t in 0..t_len {
                    ys.push(core.step(x.clone().narrow(1, t, 1), &mut memory, no_hook()));
                }
            }
            let diff = max_abs_diff(Tensor::cat(ys, 1), by_segment.clone());
            assert!(
                diff < 1e-5,
                "{name}, {label}: steps differ from segments by {diff}"
            );
            let diff = max_abs_diff(memory.memories(), carried.clone());
            assert!(
                diff < 1e-5,
                "{name}, {label}: carried memories differ by {diff}"
            );
        }
        // Causality: changing a later observation leaves earlier outputs unchanged.
        let x = seeded::normal([b, t_len, d], 10, &device);
        let bumped = x
            .clone()
            .slice_assign([0..b, 5..6, 0..d], seeded::normal([b, 1, d], 99, &device));
        let (y0, _) = core.forward(x, core.memory(zeros.clone(), t_len), no_hook());
        let (y1, _) = core.forward(bumped, core.memory(zeros.clone(), t_len), no_hook());
        assert_eq!(
            max_abs_diff(y0.clone().narrow(1, 0, 5), y1.clone().narrow(1, 0, 5)),
            0.0,
            "{name}: causality"
        );
        let (y0, y1) = (y0.narrow(1, 5, 2), y1.narrow(1, 5, 2));
        assert_differs(&format!("{name}: step 5 must see its input"), y0, y1, 1e-4);
    }
}

/// With host products on plain weights, a step's linear maps and attention run on the host
/// kernels (packed once per memory, windows copied to the host once and kept up to date): the
/// same outputs and memories as burn's products, step by step (through a row reset and a row
/// reorder, which the host windows must follow) and by segment, for every config (biases off
/// and ReLU too). With autodiff weights the kernels stay out (no gradient flows through them).
#[test]
fn host_products_step_as_burns_products_do() {
    let device = mnemo_backend::test_device().inner();
    let mut all = configs();
    let mut plain = config();
    plain.options.bias = false;
    plain.options.activation = mnemo_core::Activation::Relu;
    all.push(("no bias, relu", plain));
    for (name, config) in all {
        let backend = core(config, 5, &device);
        let host = backend.clone().with_step_products(StepProducts::Host);
        let (b, t_len, d) = (2, 6, config.d_model);
        let x = seeded::normal([b, 2 * t_len, d], 20, &device);
        let run = |core: &FeedbackCore| {
            let mut memory = core.fresh_memory(b, &device);
            let mut ys = Vec::new();
            for t in 0..2 * t_len {
                if t == 7 {
                    core.reset_rows(&mut memory, &[false, true]);
                }
                if t == 9 {
                    let rows = TensorData::new(vec![1i64, 0], [2]);
                    memory.select(&Tensor::from_data(rows, &device));
                }
                ys.push(core.step(x.clone().narrow(1, t, 1), &mut memory, no_hook()));
            }
            (Tensor::cat(ys, 1), memory)
        };
        let (want, want_memory) = run(&backend);
        let (got, got_memory) = run(&host);
        assert!(got_memory.steps_on_host(), "{name}: host products not used");
        assert!(!want_memory.steps_on_host(), "{name}: backend products");
        assert_close(&format!("{name}: steps"), got, want, 1e-5);
        let (got_m, want_m) = (got_memory.memories(), want_memory.memories());
        assert_close(&format!("{name}: memories"), got_m, want_m, 1e-5);
        let zeros = Tensor::zeros([b, config.span, d], &device);
        let segment = |core: &FeedbackCore| {
            let (y, memory) =
                core.forward(x.clone(), core.memory(zeros.clone(), 2 * t_len), no_hook());
            assert_eq!(memory.steps_on_host(), core.products == StepProducts::Host);
            y
        };
        assert_close(
            &format!("{name}: segment"),
            segment(&host),
            segment(&backend),
            1e-5,
        );
    }
    let autodiff = device.clone().autodiff();
    let host = core(config(), 5, &autodiff).with_step_products(StepProducts::Host);
    let mut memory = host.fresh_memory(2, &autodiff);
    let _ = host.step(
        seeded::normal([2, 1, 16], 1, &autodiff),
        &mut memory,
        no_hook(),
    );
    assert!(
        !memory.steps_on_host(),
        "autodiff weights must not reach the kernels"
    );
}

/// A step without a hook on host rows (`step_unhooked` with host products: norms, biases,
/// activations and residuals on host rows between the kernels' products) gives the tensor
/// step's outputs and memories, through a row reset and a row reorder, for pre-norm configs
/// (LayerNorm and RMSNorm, shared and per-layer keys/values, mixed and top-layer memories,
/// without biases with ReLU); a post-norm core takes the tensor step.
#[test]
fn host_rows_step_as_the_tensor_step_does() {
    let device = mnemo_backend::test_device().inner();
    let mut all = configs();
    all.push((
        "pre-norm rms",
        FeedbackCoreConfig {
            norm: NormKind::Rms,
            ..config()
        },
    ));
    let mut plain = config();
    plain.options.bias = false;
    plain.options.activation = mnemo_core::Activation::Relu;
    all.push(("no bias, relu", plain));
    for (name, config) in all {
        // Norm gains and biases away from their constant init, so that their use is checked.
        let backend = perturbed(core(config, 5, &device), 0.3, 6);
        let host = backend.clone().with_step_products(StepProducts::Host);
        let (b, d) = (2, config.d_model);
        let x = seeded::normal([b, 12, d], 21, &device);
        let run = |core: &FeedbackCore, rows: bool| {
            let mut memory = core.fresh_memory(b, &device);
            let mut ys = Vec::new();
            for t in 0..12 {
                if t == 7 {
                    core.reset_rows(&mut memory, &[false, true]);
                }
                if t == 9 {
                    let order = TensorData::new(vec![1i64, 0], [2]);
                    memory.select(&Tensor::from_data(order, &device));
                }
                let x = x.clone().narrow(1, t, 1);
                ys.push(match rows {
                    true => core.step_unhooked(x, &mut memory),
                    false => core.step(x, &mut memory, no_hook()),
                });
            }
            (Tensor::cat(ys, 1), memory)
        };
        let (want, want_memory) = run(&backend, false);
        let (got, got_memory) = run(&host, true);
        let pre = config.placement == NormPlacement::Pre;
        assert_eq!(got_memory.steps_on_host_rows(), pre, "{name}: host rows");
        assert!(!want_memory.steps_on_host_rows(), "{name}: tensor step");
        assert_close(&format!("{name}: steps"), got, want, 1e-5);
        let (got_m, want_m) = (got_memory.memories(), want_memory.memories());
        assert_close(&format!("{name}: memories"), got_m, want_m, 1e-5);
    }
}

/// The host-row step run by two threads in lockstep (each its columns of every product and its
/// rows of the attention, `mnemo_kernels::in_pair`) equals the same step on one thread bit for
/// bit: products wide enough to split in both parts, one row and an odd batch whose rows
/// interleave the two parts' columns, the window moving to the front.
#[test]
fn a_paired_host_step_equals_the_step_on_one_thread() {
    let device = mnemo_backend::test_device().inner();
    let config = FeedbackCoreConfig {
        d_model: 64,
        n_heads: 4,
        d_ff: 160,
        span: 5,
        ..config()
    };
    let host = perturbed(core(config, 8, &device), 0.3, 9).with_step_products(StepProducts::Host);
    // One row: each half attends the queries it computed; three: the queries are exchanged.
    for b in [1, 3] {
        let x = seeded::normal([b, 13, config.d_model], 22, &device);
        let run = || {
            let mut memory = host.fresh_memory(b, &device);
            let ys: Vec<_> = (0..13)
                .map(|t| host.step_unhooked(x.clone().narrow(1, t, 1), &mut memory))
                .collect();
            assert!(memory.steps_on_host_rows());
            (
                Tensor::cat(ys, 1).into_data(),
                memory.memories().into_data(),
            )
        };
        let alone = mnemo_kernels::on_this_core(run);
        for round in 0..5 {
            assert_eq!(run(), alone, "b {b}, round {round}: paired vs one thread");
        }
    }
}

/// `FeedbackCore::forward_backward` from float inputs: top states, carried memories, the input
/// gradient and every parameter gradient equal autodiff of `forward`.
#[test]
fn core_manual_backward_equals_autodiff_with_input_gradient() {
    let device = mnemo_backend::test_device();
    let config = config();
    for share_kv in [true, false] {
        let core = core(FeedbackCoreConfig { share_kv, ..config }, 5, &device);
        let (b, t_len, d) = (2, 6, config.d_model);
        let carried = seeded::normal([b, config.span, d], 6, &device);
        let x = seeded::normal([b, t_len, d], 7, &device).require_grad();
        let probe = seeded::normal([b, t_len, d], 8, &device);
        let (y, memory) = core.forward(x.clone(), core.memory(carried.clone(), t_len), no_hook());
        let auto = (y.clone() * probe.clone()).sum().backward();
        let mut grads = GradientsParams::new();
        let out = core.forward_backward(
            x.clone(),
            carried,
            &mut NoManualHook,
            &mut grads,
            Some(|_| probe.clone().inner()),
        );
        let name = format!("share_kv {share_kv}");
        assert!(
            max_abs_diff(out.top, y.inner()) < 1e-5,
            "{name}: top states"
        );
        assert!(
            max_abs_diff(out.memories, memory.memories().inner()) < 1e-5,
            "{name}: next memories"
        );
        let want = x.grad(&auto).expect("input grad");
        let dx = out.dx.expect("input gradient");
        assert_close(&format!("{name}: input gradient"), dx, want, 2e-4);
        let with_grads = GradientsParams::from_grads(auto, &core);
        assert_eq!(
            grads.len(),
            with_grads.len(),
            "{name}: one manual gradient per parameter"
        );
        let want: Tensor<2> = with_grads
            .get(core.layers[0].query.weight.id)
            .expect("auto grad");
        let got: Tensor<2> = grads
            .get(core.layers[0].query.weight.id)
            .expect("manual grad");
        assert_close(&format!("{name}: layer 0 query grad"), got, want, 2e-4);
    }
}

/// Per-row reset, as an agent resets a row whose episode ended: after `reset_rows`, that row's
/// outputs equal a fresh core's on the same inputs, and the other rows' outputs are exactly
/// those of a run without the reset; for folded and stored memories, through moves to the
/// front.
#[test]
fn reset_rows_restarts_one_row_and_leaves_the_others() {
    let device = mnemo_backend::test_device().inner();
    for (name, config) in configs() {
        let core = core(config, 11, &device);
        let (b, t_len, d, reset_at) = (3, 11, config.d_model, 6);
        let x = seeded::normal([b, t_len, d], 12, &device);
        let run = |mut memory, reset: bool| {
            let ys: Vec<_> = (0..t_len)
                .map(|t| {
                    if reset && t == reset_at {
                        core.reset_rows(&mut memory, &[false, true, false]);
                    }
                    core.step(x.clone().narrow(1, t, 1), &mut memory, no_hook())
                })
                .collect();
            Tensor::cat(ys, 1)
        };
        let fresh_row1 = {
            let x1 = x
                .clone()
                .narrow(0, 1, 1)
                .narrow(1, reset_at, t_len - reset_at);
            core.forward(x1, core.fresh_memory(1, &device), no_hook()).0
        };
        for (label, memory) in [
            ("folded", core.fresh_memory(b, &device)),
            (
                "stored",
                core.memory(Tensor::zeros([b, config.span, d], &device), 2),
            ),
        ] {
            let plain = run(memory.clone(), false);
            let reset = run(memory, true);
            for row in [0, 2] {
                let diff = max_abs_diff(
                    reset.clone().narrow(0, row, 1),
                    plain.clone().narrow(0, row, 1),
                );
                assert_eq!(diff, 0.0, "{name}, {label}: row {row} must not change");
            }
            let before = max_abs_diff(
                reset.clone().narrow(0, 1, 1).narrow(1, 0, reset_at),
                plain.clone().narrow(0, 1, 1).narrow(1, 0, reset_at),
            );
            assert_eq!(before, 0.0, "{name}, {label}: row 1 before its reset");
            let after = reset.narrow(0, 1, 1).narrow(1, reset_at, t_len - reset_at);
            let diff = max_abs_diff(after.clone(), fresh_row1.clone());
            assert!(
                diff < 1e-5,
                "{name}, {label}: row 1 after reset differs from fresh by {diff}"
            );
            let kept = plain.narrow(0, 1, 1).narrow(1, reset_at, t_len - reset_at);
            let what = format!("{name}, {label}: without the reset row 1 would remember");
            assert_differs(&what, after, kept, 1e-4);
        }
    }
}

/// `memory = "top"` (the paper's ablation): every memory is the top layer's output of its step,
/// whatever the mixing logits hold; with the mix, memories differ from the top states.
#[test]
fn top_layer_memory_is_the_top_state() {
    let device = mnemo_backend::test_device().inner();
    let (b, t_len, d) = (2, 6, config().d_model);
    let x = seeded::normal([b, t_len, d], 30, &device);
    let zeros = Tensor::<3>::zeros([b, config().span, d], &device);
    for (memory, equal) in [(MemorySource::Top, true), (MemorySource::Mix, false)] {
        // Non-uniform mixing logits (`core`), so the mix is not the top state by accident.
        let core = core(FeedbackCoreConfig { memory, ..config() }, 31, &device);
        let (top, after) = core.forward(x.clone(), core.memory(zeros.clone(), t_len), no_hook());
        let span = config().span;
        let last = top.narrow(1, t_len - span, span);
        let diff = max_abs_diff(after.memories(), last);
        match equal {
            true => assert!(
                diff < 1e-6,
                "{memory:?}: memories differ from top by {diff}"
            ),
            false => assert!(diff > 1e-3, "{memory:?}: the mix must not be the top state"),
        }
    }
}
