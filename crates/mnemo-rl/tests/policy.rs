//! The policy over its memory cores: acting step by step equals re-running the segment (the
//! PPO update recomputes exactly what the rollout computed), a row's reset equals a fresh
//! policy for that row and leaves the others alone, the Transformer cannot see further back
//! than its window, XL no further than its L·M steps, while the Feedback core can.
use burn::tensor::{Device, Tensor};
mod common;

use common::{config, max_abs_diff};
use mnemo_core::{NormKind, NormPlacement, seeded};
use mnemo_rl::policy::{Carried, CoreKind, Policy, PolicyConfig};

fn configs() -> Vec<PolicyConfig> {
    let post = PolicyConfig {
        placement: NormPlacement::Post,
        norm: NormKind::Rms,
        ..config(CoreKind::Feedback)
    };
    vec![
        config(CoreKind::Feedback),
        config(CoreKind::Transformer),
        config(CoreKind::Xl),
        post,
    ]
}

fn policy(config: &PolicyConfig, device: &Device) -> Policy {
    config.validate().expect("valid config");
    seeded::reinit(config.init(device), 21)
}

/// Episode starts of 3 rows over `t_len` steps, row-major: row 0 never restarts, row 1 at
/// step 4, row 2 at steps 2 and 7.
fn starts(t_len: usize) -> Vec<bool> {
    let mut s = vec![false; 3 * t_len];
    s[t_len + 4] = true;
    s[2 * t_len + 2] = true;
    s[2 * t_len + 7] = true;
    s
}

/// Two segments of 9 steps (longer than span and window), the memory carried on the host
/// between them: `segment` equals 18 calls of `act`.
#[test]
fn acting_step_by_step_equals_the_segment_rerun() {
    let device = mnemo_backend::test_device().inner();
    for config in configs() {
        let policy = policy(&config, &device);
        let (b, t_len) = (3, 9);
        let mut carried = Carried::fresh(&policy, b);
        let mut memory = policy.start(b, &device);
        for seg in 0..2u64 {
            let obs = seeded::normal([b, t_len, config.obs_dim], 30 + seg, &device);
            let starts = starts(t_len);
            let (logits, values, after) = policy.segment(obs.clone(), &starts, carried);
            let mut step_logits = Vec::new();
            let mut step_values = Vec::new();
            for t in 0..t_len {
                let flags: Vec<bool> = (0..b).map(|r| starts[r * t_len + t]).collect();
                let o = obs.clone().narrow(1, t, 1).reshape([b, config.obs_dim]);
                let (l, v) = policy.act(o, &flags, &mut memory);
                step_logits.push(l.unsqueeze_dim::<3>(1));
                step_values.push(v.unsqueeze_dim::<2>(1));
            }
            let name = format!("{:?}/{:?} segment {seg}", config.kind, config.placement);
            let d = max_abs_diff(logits, Tensor::cat(step_logits, 1));
            assert!(d < 1e-5, "{name}: logits differ by {d}");
            let d = max_abs_diff(values, Tensor::cat(step_values, 1));
            assert!(d < 1e-5, "{name}: values differ by {d}");
            carried = after.carried();
            let stepped = memory.carried();
            let d = stepped
                .values
                .iter()
                .zip(&carried.values)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(d < 1e-5, "{name}: carried memories differ by {d}");
        }
    }
}

/// A row reset mid-stream acts exactly as a fresh policy fed that row's observations from the
/// reset on; rows without a reset are bit-identical to a run without resets.
#[test]
fn a_reset_row_equals_a_fresh_policy_and_the_others_are_unchanged() {
    let device = mnemo_backend::test_device().inner();
    for config in configs() {
        let policy = policy(&config, &device);
        let (b, t_len, at) = (3, 10, 6);
        let obs = seeded::normal([b, t_len, config.obs_dim], 40, &device);
        let run = |reset_row: Option<usize>| {
            let mut memory = policy.start(b, &device);
            let outs: Vec<_> = (0..t_len)
                .map(|t| {
                    let flags: Vec<bool> =
                        (0..b).map(|r| t == at && Some(r) == reset_row).collect();
                    let o = obs.clone().narrow(1, t, 1).reshape([b, config.obs_dim]);
                    policy.act(o, &flags, &mut memory).0.unsqueeze_dim::<3>(1)
                })
                .collect();
            Tensor::cat(outs, 1)
        };
        let plain = run(None);
        let reset = run(Some(1));
        let name = format!("{:?}/{:?}", config.kind, config.placement);
        for row in [0, 2] {
            let d = max_abs_diff(
                reset.clone().narrow(0, row, 1),
                plain.clone().narrow(0, row, 1),
            );
            assert_eq!(d, 0.0, "{name}: row {row} must not change");
        }
        let fresh = {
            let mut memory = policy.start(1, &device);
            let outs: Vec<_> = (at..t_len)
                .map(|t| {
                    let o = obs
                        .clone()
                        .narrow(0, 1, 1)
                        .narrow(1, t, 1)
                        .reshape([1, config.obs_dim]);
                    policy
                        .act(o, &[t == at], &mut memory)
                        .0
                        .unsqueeze_dim::<3>(1)
                })
                .collect();
            Tensor::cat(outs, 1)
        };
        let after = reset.narrow(0, 1, 1).narrow(1, at, t_len - at);
        let remembered = plain.narrow(0, 1, 1).narrow(1, at, t_len - at);
        let (vs_fresh, vs_remembered) = (
            max_abs_diff(after.clone(), fresh),
            max_abs_diff(after, remembered),
        );
        // Equal to a fresh policy, and the reset mattered (without it row 1 remembers).
        assert!(
            vs_fresh < 1e-5 && vs_remembered > 1e-4,
            "{name}: reset row vs fresh policy {vs_fresh}, vs no reset {vs_remembered}"
        );
    }
}

/// How much the last step's logits move when the observation `back` steps before it changes.
fn influence(policy: &Policy, obs_dim: usize, t_len: usize, back: usize, device: &Device) -> f32 {
    let obs = seeded::normal([1, t_len, obs_dim], 50, device);
    let bumped = obs.clone().slice_assign(
        [0..1, t_len - 1 - back..t_len - back, 0..obs_dim],
        seeded::normal([1, 1, obs_dim], 51, device),
    );
    let starts = vec![false; t_len];
    let last = |o: Tensor<3>| {
        let (logits, _, _) = policy.segment(o, &starts, Carried::fresh(policy, 1));
        logits.narrow(1, t_len - 1, 1)
    };
    max_abs_diff(last(obs), last(bumped))
}

/// Each core's reach: the Transformer sees exactly its window (W = 3: the current step and two
/// before), XL exactly L·M = 2·3 = 6 steps back (each layer adds its memory of M); the Feedback
/// core, with a span of 3 memories, still feels a step 8 steps back.
#[test]
fn each_core_sees_exactly_as_far_back_as_it_reaches() {
    let device = mnemo_backend::test_device().inner();
    let t_len = 10;
    for (kind, reach) in [(CoreKind::Transformer, 2), (CoreKind::Xl, 6)] {
        let policy = policy(&config(kind), &device);
        for back in 0..t_len {
            let moved = influence(&policy, 5, t_len, back, &device);
            match back <= reach {
                true => assert!(moved > 1e-6, "{kind:?}: {back} steps back is inside"),
                false => assert_eq!(moved, 0.0, "{kind:?}: {back} steps back"),
            }
        }
    }
    let feedback = policy(&config(CoreKind::Feedback), &device);
    assert!(
        influence(&feedback, 5, t_len, 8, &device) > 1e-6,
        "feedback remembers past its span"
    );
}
