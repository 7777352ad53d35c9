//! The rollout buffer: `T` steps of `N` copies, host-side, time-major, plus minibatches of whole
//! env rows for memory policies (each minibatch keeps complete time sequences, as CleanRL's
//! `ppo_atari_lstm.py` splits by environment).
//!
//! Collection order per step `t`: the policy reads `obs[t]` (clearing the memory of rows whose
//! `starts[t]` is set), chooses `actions[t]` with `log_probs[t]` and `values[t]`; the
//! environments answer `rewards[t]` and `dones[t]`. Hence `starts[t + 1] == dones[t]`.
use rand::Rng;
use rand::seq::SliceRandom;

use crate::env::{Env, EpisodeInfo, VecEnv, VecStep};
use crate::gae::{Gae, gae};

/// One step of all `N` copies, for [`Rollout::push`].
///
/// # Shapes
/// - `obs`: `[N, obs_dim]`; everything else `[N]`.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    /// Observations the policy read.
    pub obs: &'a [f32],
    /// Whether each observation is the first of its episode.
    pub starts: &'a [bool],
    /// Actions taken.
    pub actions: &'a [usize],
    /// Log-probabilities of those actions under the acting policy.
    pub log_probs: &'a [f32],
    /// Value estimates of the observations.
    pub values: &'a [f32],
    /// Rewards received.
    pub rewards: &'a [f32],
    /// Whether the step ended the episode.
    pub dones: &'a [bool],
}

/// What the acting policy writes for one step of all copies (see [`Rollout::collect`]).
///
/// # Shapes
/// - all `[N]`.
#[derive(Debug)]
pub struct PolicyOutput<'a> {
    /// Chosen actions.
    pub actions: &'a mut [usize],
    /// Their log-probabilities.
    pub log_probs: &'a mut [f32],
    /// Value estimates of the observations.
    pub values: &'a mut [f32],
}

/// A `[T, N]` rollout on the host.
///
/// # Shapes
/// - `obs`: `[T, N, obs_dim]`; `starts`, `actions`, `log_probs`, `values`, `rewards`, `dones`:
///   `[T, N]`; all time-major, filled up to [`Rollout::len`] steps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rollout {
    steps: usize,
    n_envs: usize,
    obs_dim: usize,
    len: usize,
    /// Observations.
    pub obs: Vec<f32>,
    /// First observation of an episode (the policy clears that row's memory first).
    pub starts: Vec<bool>,
    /// Actions.
    pub actions: Vec<usize>,
    /// Log-probabilities of the actions when they were taken.
    pub log_probs: Vec<f32>,
    /// Value estimates.
    pub values: Vec<f32>,
    /// Rewards.
    pub rewards: Vec<f32>,
    /// The step ended the episode.
    pub dones: Vec<bool>,
}

/// The rows `envs` of a full rollout, batch-major (ready for a memory policy's `[B, T, …]`
/// forward), with their advantages and returns.
///
/// # Shapes
/// - `obs`: `[B, T, obs_dim]`; the others `[B, T]`, where `B = envs.len()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Minibatch {
    /// The env rows, in batch order.
    pub envs: Vec<usize>,
    /// Time steps `T`.
    pub steps: usize,
    /// Observations.
    pub obs: Vec<f32>,
    /// Episode starts.
    pub starts: Vec<bool>,
    /// Actions.
    pub actions: Vec<usize>,
    /// Log-probabilities at collection.
    pub log_probs: Vec<f32>,
    /// Values at collection.
    pub values: Vec<f32>,
    /// GAE advantages.
    pub advantages: Vec<f32>,
    /// Value targets.
    pub returns: Vec<f32>,
}

impl Rollout {
    /// An empty buffer for `steps` steps of `n_envs` copies with `obs_dim`-float observations.
    pub fn new(steps: usize, n_envs: usize, obs_dim: usize) -> Self {
        let tn = steps * n_envs;
        Self {
            steps,
            n_envs,
            obs_dim,
            len: 0,
            obs: vec![0.0; tn * obs_dim],
            starts: vec![false; tn],
            actions: vec![0; tn],
            log_probs: vec![0.0; tn],
            values: vec![0.0; tn],
            rewards: vec![0.0; tn],
            dones: vec![false; tn],
        }
    }

    /// Capacity `T`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Copies `N`.
    pub fn n_envs(&self) -> usize {
        self.n_envs
    }

    /// Observation length.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Steps recorded so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All `T` steps recorded.
    pub fn is_full(&self) -> bool {
        self.len == self.steps
    }

    /// Forget the recorded steps (the storage is reused).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Record the next step.
    ///
    /// # Panics
    /// If the buffer is full or a slice has the wrong length.
    pub fn push(&mut self, tr: Transition<'_>) {
        assert!(
            !self.is_full(),
            "rollout buffer full ({} steps)",
            self.steps
        );
        let (n, d, t) = (self.n_envs, self.obs_dim, self.len);
        let rows = t * n..(t + 1) * n;
        self.obs[t * n * d..(t + 1) * n * d].copy_from_slice(tr.obs);
        self.starts[rows.clone()].copy_from_slice(tr.starts);
        self.actions[rows.clone()].copy_from_slice(tr.actions);
        self.log_probs[rows.clone()].copy_from_slice(tr.log_probs);
        self.values[rows.clone()].copy_from_slice(tr.values);
        self.rewards[rows.clone()].copy_from_slice(tr.rewards);
        self.dones[rows].copy_from_slice(tr.dones);
        self.len += 1;
    }

    /// Fill the buffer by acting in `env` from its current observation `current.obs`
    /// (initialise it with [`VecEnv::observe`] before the first call; afterwards it holds the
    /// observation to continue from, whose value bootstraps [`Rollout::gae`]).
    ///
    /// `act(obs [N, obs_dim], starts [N], out)` is the policy: it must clear the memory of rows
    /// whose `starts` is set before reading their observation. Returns the episodes that
    /// finished during the rollout.
    ///
    /// # Panics
    /// If the sizes of `env`, `current` and the buffer disagree.
    pub fn collect<E: Env>(
        &mut self,
        env: &mut VecEnv<E>,
        current: &mut VecStep,
        mut act: impl FnMut(&[f32], &[bool], PolicyOutput<'_>),
    ) -> Vec<EpisodeInfo> {
        let n = self.n_envs;
        assert_eq!(env.len(), n, "env copies must match the rollout's N");
        assert_eq!(
            env.obs_dim(),
            self.obs_dim,
            "env obs_dim must match the rollout's"
        );
        self.clear();
        let mut starts = vec![false; n];
        let mut actions = vec![0; n];
        let mut log_probs = vec![0.0; n];
        let mut values = vec![0.0; n];
        let mut obs = current.obs.clone();
        let mut episodes = Vec::new();
        while !self.is_full() {
            env.episode_starts(&mut starts);
            obs.copy_from_slice(&current.obs);
            act(
                &obs,
                &starts,
                PolicyOutput {
                    actions: &mut actions,
                    log_probs: &mut log_probs,
                    values: &mut values,
                },
            );
            env.step(&actions, current);
            self.push(Transition {
                obs: &obs,
                starts: &starts,
                actions: &actions,
                log_probs: &log_probs,
                values: &values,
                rewards: &current.rewards,
                dones: &current.dones,
            });
            episodes.extend_from_slice(&current.episodes);
        }
        episodes
    }

    /// GAE(γ, λ) of the full buffer, bootstrapped with `last_values` (`[N]`, the values of
    /// the observations after the last step).
    ///
    /// # Panics
    /// If the buffer is not full.
    pub fn gae(&self, last_values: &[f32], gamma: f32, lambda: f32) -> Gae {
        assert!(self.is_full(), "gae needs a full rollout");
        gae(
            &self.rewards,
            &self.values,
            &self.dones,
            last_values,
            gamma,
            lambda,
        )
    }

    /// Gather env rows `envs` (whole sequences) with their advantages and returns.
    ///
    /// # Panics
    /// If the buffer is not full, `gae` does not match it, or a row is out of range.
    pub fn minibatch(&self, envs: &[usize], gae: &Gae) -> Minibatch {
        assert!(self.is_full(), "minibatches need a full rollout");
        let (t_len, n, d) = (self.steps, self.n_envs, self.obs_dim);
        assert_eq!(
            gae.advantages.len(),
            t_len * n,
            "gae must match the rollout"
        );
        let b = envs.len();
        let mut mb = Minibatch {
            envs: envs.to_vec(),
            steps: t_len,
            obs: Vec::with_capacity(b * t_len * d),
            starts: Vec::with_capacity(b * t_len),
            actions: Vec::with_capacity(b * t_len),
            log_probs: Vec::with_capacity(b * t_len),
            values: Vec::with_capacity(b * t_len),
            advantages: Vec::with_capacity(b * t_len),
            returns: Vec::with_capacity(b * t_len),
        };
        for &e in envs {
            assert!(e < n, "env row {e} out of range (N = {n})");
            for t in 0..t_len {
                let k = t * n + e;
                mb.obs.extend_from_slice(&self.obs[k * d..(k + 1) * d]);
                mb.starts.push(self.starts[k]);
                mb.actions.push(self.actions[k]);
                mb.log_probs.push(self.log_probs[k]);
                mb.values.push(self.values[k]);
                mb.advantages.push(gae.advantages[k]);
                mb.returns.push(gae.returns[k]);
            }
        }
        mb
    }
}

/// A random partition of the env rows `0..n_envs` into `n_minibatches` sets of (as nearly as
/// possible) equal size, drawn from `rng`.
///
/// # Panics
/// If `n_minibatches` is 0 or exceeds `n_envs`.
pub fn env_minibatches<R: Rng + ?Sized>(
    n_envs: usize,
    n_minibatches: usize,
    rng: &mut R,
) -> Vec<Vec<usize>> {
    assert!(
        (1..=n_envs).contains(&n_minibatches),
        "n_minibatches must be in 1..={n_envs}, got {n_minibatches}"
    );
    let mut rows: Vec<usize> = (0..n_envs).collect();
    rows.shuffle(rng);
    let (base, extra) = (n_envs / n_minibatches, n_envs % n_minibatches);
    let mut out = Vec::with_capacity(n_minibatches);
    let mut start = 0;
    for m in 0..n_minibatches {
        let size = base + usize::from(m < extra);
        out.push(rows[start..start + size].to_vec());
        start += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn minibatches_partition_the_rows() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let sets = env_minibatches(10, 3, &mut rng);
        assert_eq!(sets.iter().map(Vec::len).collect::<Vec<_>>(), [4, 3, 3]);
        let mut all: Vec<usize> = sets.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn minibatch_is_batch_major() {
        let (t_len, n, d) = (3, 2, 2);
        let mut rollout = Rollout::new(t_len, n, d);
        for t in 0..t_len {
            let obs: Vec<f32> = (0..n * d).map(|j| (10 * t + j) as f32).collect();
            let actions = [t, t + 1];
            let values = [t as f32, -(t as f32)];
            rollout.push(Transition {
                obs: &obs,
                starts: &[t == 0, false],
                actions: &actions,
                log_probs: &[0.0; 2],
                values: &values,
                rewards: &[1.0, 0.0],
                dones: &[false; 2],
            });
        }
        let g = rollout.gae(&[0.0, 0.0], 1.0, 1.0);
        let mb = rollout.minibatch(&[1], &g);
        assert_eq!(mb.obs, [2.0, 3.0, 12.0, 13.0, 22.0, 23.0]);
        assert_eq!(mb.actions, [1, 2, 3]);
        assert_eq!(mb.values, [0.0, -1.0, -2.0]);
        assert_eq!(mb.starts, [false; 3]);
        // Copy 1 gets no reward, so its returns are zero and A = −V.
        assert_eq!(mb.returns, [0.0; 3]);
        assert_eq!(mb.advantages, [0.0, 1.0, 2.0]);
    }
}
