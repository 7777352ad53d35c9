//! Generalised advantage estimation (Schulman et al., "High-Dimensional Continuous Control Using
//! Generalized Advantage Estimation", ICLR 2016), as CleanRL's `ppo_atari_lstm.py` computes it.
//!
//! For each copy, with `δ_t = r_t + γ·(1 − done_t)·V_{t+1} − V_t`,
//! `A_t = δ_t + γλ·(1 − done_t)·A_{t+1}` and `R_t = A_t + V_t`, where `V_T` is the value of the
//! observation after the last step (`last_values`, CleanRL's `next_value`).
//!
//! Flags: `dones[t]` here means *the step taken at `t` ended the episode* (`r_t` is its last
//! reward). CleanRL stores the same flag one slot later (`dones[t + 1]`, and `next_done` for the
//! last step) because it records whether the *observation* at `t` starts an episode; both give
//! the same numbers. Time-limit truncations are treated as terminations (no bootstrap), as in
//! CleanRL.
use serde::{Deserialize, Serialize};

/// Advantages and returns of a rollout.
///
/// # Shapes
/// - `advantages`, `returns`: `[T, N]`, time-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gae {
    /// `A_t`.
    pub advantages: Vec<f32>,
    /// `R_t = A_t + V_t` (the value targets).
    pub returns: Vec<f32>,
}

/// GAE(γ = `gamma`, λ = `lambda`) over a `[T, N]` rollout.
///
/// # Shapes
/// - `rewards`, `values`, `dones`: `[T, N]`, time-major (`N = last_values.len()`).
/// - `last_values`: `[N]`, the value of each copy's observation after step `T − 1`.
///
/// # Panics
/// If the lengths disagree.
pub fn gae(
    rewards: &[f32],
    values: &[f32],
    dones: &[bool],
    last_values: &[f32],
    gamma: f32,
    lambda: f32,
) -> Gae {
    let n = last_values.len();
    assert!(n > 0, "gae needs at least one copy");
    assert_eq!(rewards.len() % n, 0, "rewards must be [T, N]");
    let t_len = rewards.len() / n;
    assert_eq!(values.len(), t_len * n, "values must be [T, N]");
    assert_eq!(dones.len(), t_len * n, "dones must be [T, N]");
    let mut advantages = vec![0.0; t_len * n];
    let mut running = vec![0.0f32; n]; // A_{t+1} per copy
    for t in (0..t_len).rev() {
        for i in 0..n {
            let k = t * n + i;
            let next_value = if t + 1 < t_len {
                values[k + n]
            } else {
                last_values[i]
            };
            let nonterminal = if dones[k] { 0.0 } else { 1.0 };
            let delta = rewards[k] + gamma * nonterminal * next_value - values[k];
            running[i] = delta + gamma * lambda * nonterminal * running[i];
            advantages[k] = running[i];
        }
    }
    let returns = advantages.iter().zip(values).map(|(a, v)| a + v).collect();
    Gae {
        advantages,
        returns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand (γ = λ = 0.5). Copy 0: an episode ends at t = 1.
    /// t=2: δ = 2 + 0.5·2 − 1 = 2, A = 2.
    /// t=1: done, δ = 0 − 1 = −1, A = −1.
    /// t=0: δ = 1 + 0.5·1 − 0.5 = 1, A = 1 + 0.25·(−1) = 0.75.
    /// Copy 1: zero rewards and values, V_T = 4: A = [0.125, 0.5, 2].
    #[test]
    fn hand_worked_example() {
        let rewards = [1.0, 0.0, 0.0, 0.0, 2.0, 0.0];
        let values = [0.5, 0.0, 1.0, 0.0, 1.0, 0.0];
        let dones = [false, false, true, false, false, false];
        let out = gae(&rewards, &values, &dones, &[2.0, 4.0], 0.5, 0.5);
        assert_eq!(out.advantages, [0.75, 0.125, -1.0, 0.5, 2.0, 2.0]);
        assert_eq!(out.returns, [1.25, 0.125, 0.0, 0.5, 3.0, 2.0]);
    }
}
