//! GAE against a naive reference (the discounted sum of TD errors up to the episode's end,
//! CleanRL's flag convention) and its λ = 0 / λ = 1 special cases.
use mnemo_rl::gae::gae;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// CleanRL's loop, literally: `dones_c[t]` is "obs t starts an episode", `next_done` the flag
/// after the last step, computed per env with f64 sums of `(γλ)^l δ_{t+l}`.
fn naive(
    rewards: &[f32],
    values: &[f32],
    dones: &[bool],
    last: &[f32],
    gamma: f64,
    lambda: f64,
) -> Vec<f64> {
    let n = last.len();
    let t_len = rewards.len() / n;
    let mut out = vec![0.0; t_len * n];
    for i in 0..n {
        // Shift to CleanRL's convention.
        let starts: Vec<bool> = (0..=t_len)
            .map(|t| t > 0 && dones[(t - 1) * n + i])
            .collect();
        let value = |t: usize| {
            if t == t_len {
                last[i] as f64
            } else {
                values[t * n + i] as f64
            }
        };
        let delta = |t: usize| {
            let nonterminal = if starts[t + 1] { 0.0 } else { 1.0 };
            rewards[t * n + i] as f64 + gamma * value(t + 1) * nonterminal - value(t)
        };
        for t in 0..t_len {
            let mut sum = 0.0;
            let mut weight = 1.0;
            for u in t..t_len {
                sum += weight * delta(u);
                if starts[u + 1] {
                    break;
                }
                weight *= gamma * lambda;
            }
            out[t * n + i] = sum;
        }
    }
    out
}

fn random_rollout(seed: u64, t_len: usize, n: usize) -> (Vec<f32>, Vec<f32>, Vec<bool>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rewards = (0..t_len * n)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let values = (0..t_len * n)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let dones = (0..t_len * n).map(|_| rng.random_bool(0.15)).collect();
    let last = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    (rewards, values, dones, last)
}

#[test]
fn matches_the_naive_reference() {
    for (seed, gamma, lambda) in [(0, 0.99, 0.95), (1, 0.9, 0.5), (2, 1.0, 1.0), (3, 0.5, 0.0)] {
        let (rewards, values, dones, last) = random_rollout(seed, 37, 5);
        let out = gae(&rewards, &values, &dones, &last, gamma, lambda);
        let reference = naive(
            &rewards,
            &values,
            &dones,
            &last,
            gamma as f64,
            lambda as f64,
        );
        for (k, (a, r)) in out.advantages.iter().zip(&reference).enumerate() {
            assert!(
                (*a as f64 - r).abs() < 1e-4,
                "seed {seed} k {k}: {a} vs {r}"
            );
            assert_eq!(out.returns[k], a + values[k]);
        }
    }
}

#[test]
fn lambda_one_gives_discounted_returns_and_lambda_zero_td_errors() {
    let (rewards, values, dones, last) = random_rollout(4, 20, 3);
    let (n, t_len, gamma) = (3, 20, 0.9f32);
    let mc = gae(&rewards, &values, &dones, &last, gamma, 1.0);
    let td = gae(&rewards, &values, &dones, &last, gamma, 0.0);
    for (i, &last_value) in last.iter().enumerate() {
        let mut ret = last_value;
        for t in (0..t_len).rev() {
            let k = t * n + i;
            let next = if t + 1 < t_len {
                values[k + n]
            } else {
                last_value
            };
            let nonterminal = if dones[k] { 0.0 } else { 1.0 };
            ret = rewards[k] + gamma * nonterminal * ret;
            assert!((mc.returns[k] - ret).abs() < 1e-4, "λ=1 t {t} env {i}");
            let delta = rewards[k] + gamma * nonterminal * next - values[k];
            assert!((td.advantages[k] - delta).abs() < 1e-6, "λ=0 t {t} env {i}");
        }
    }
}
