//! The Feedback policy's manual backward (the segment cut into episode pieces, the core's
//! manual backward over them) equals burn's autodiff of the step-by-step segment with per-row
//! resets: logits and the gradient of every parameter, with resets at the first step, in the
//! middle and none, from a carried memory, for shared and per-layer K/V.
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
mod common;

use mnemo_core::seeded;
use mnemo_rl::policy::{Backward, Carried, CoreKind, Policy, PolicyConfig};

fn config(share_kv: bool) -> PolicyConfig {
    PolicyConfig {
        share_kv,
        ..common::config(CoreKind::Feedback)
    }
}

/// Compares every float parameter's gradient in two sets.
struct Compare<'a> {
    got: &'a GradientsParams,
    want: &'a GradientsParams,
    compared: usize,
    label: String,
}

impl ModuleVisitor for Compare<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let want: Tensor<D> = self.want.get(param.id).expect("an autodiff gradient");
        let got: Tensor<D> = self
            .got
            .get(param.id)
            .unwrap_or_else(|| panic!("{}: no manual gradient for {:?}", self.label, param.id));
        let scale = 1.0 + want.clone().abs().max().into_scalar::<f32>();
        let diff = (got - want).abs().max().into_scalar::<f32>();
        assert!(
            diff < 1e-4 * scale,
            "{}: parameter {:?} of shape {:?} differs by {diff}",
            self.label,
            param.id,
            param.val().dims()
        );
        self.compared += 1;
    }
}

#[test]
fn manual_backward_equals_autodiff_with_resets() {
    let device = mnemo_backend::test_device();
    let (b, t_len) = (3, 7);
    // Row 0: no start; row 1: starts at step 0 and 4; row 2: starts at step 2, 3 and 6.
    let mut starts = vec![false; b * t_len];
    for (row, t) in [(1, 0), (1, 4), (2, 2), (2, 3), (2, 6)] {
        starts[row * t_len + t] = true;
    }
    for share_kv in [true, false] {
        let config = config(share_kv);
        let policy: Policy = seeded::reinit(config.init(&device), 3);
        assert!(policy.has_manual_backward());
        // A memory carried from an earlier segment.
        let warm = seeded::normal([b, 4, config.obs_dim], 4, &device);
        let (_, _, memory) = policy.segment(warm, &vec![false; b * 4], Carried::fresh(&policy, b));
        let carried = memory.carried();
        let obs = seeded::normal([b, t_len, config.obs_dim], 5, &device);
        let w_logits = seeded::normal([b, t_len, config.n_actions], 6, &device);
        let w_values = seeded::normal([b, t_len], 7, &device);
        let loss = |logits: Tensor<3>, values: Tensor<2>| {
            (logits * w_logits.clone()).sum() + (values.powf_scalar(2.0) * w_values.clone()).sum()
        };
        let (want_logits, want) = policy.segment_grads(
            obs.clone(),
            &starts,
            carried.clone(),
            Backward::Autodiff,
            loss,
        );
        let (got_logits, got) =
            policy.segment_grads(obs, &starts, carried, Backward::Fastest, loss);
        let label = format!("share_kv {share_kv}");
        let diff = (got_logits - want_logits).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{label}: logits differ by {diff}");
        let mut compare = Compare {
            got: &got,
            want: &want,
            compared: 0,
            label,
        };
        policy.visit(&mut compare);
        assert_eq!(
            compare.compared,
            want.len(),
            "every parameter has a gradient"
        );
        assert_eq!(got.len(), want.len(), "no gradient beyond the parameters");
    }
}
