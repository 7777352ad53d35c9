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

/// What the acting policy read and chose, one row per (step, copy): the columns a [`Rollout`]
/// and a [`Minibatch`] share.
///
/// # Shapes
/// - `obs`: `[R, obs_dim]`; the others `[R]`, for `R` rows (time-major `[T, N]` in a rollout,
///   batch-major `[B, T]` in a minibatch, `[N]` for one step of all copies).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Acted {
    /// Observations the policy read.
    pub obs: Vec<f32>,
    /// First observation of an episode (the policy clears that row's memory first).
    pub starts: Vec<bool>,
    /// Actions taken.
    pub actions: Vec<usize>,
    /// Log-probabilities of the actions when they were taken.
    pub log_probs: Vec<f32>,
    /// Value estimates of the observations at collection.
    pub values: Vec<f32>,
}

impl Acted {
    /// `rows` zeroed rows of `obs_dim`-float observations.
    pub fn zeros(rows: usize, obs_dim: usize) -> Self {
        Self {
            obs: vec![0.0; rows * obs_dim],
            starts: vec![false; rows],
            actions: vec![0; rows],
            log_probs: vec![0.0; rows],
            values: vec![0.0; rows],
        }
    }

    /// No rows yet, with room for `rows` of `obs_dim`-float observations.
    fn with_capacity(rows: usize, obs_dim: usize) -> Self {
        Self {
            obs: Vec::with_capacity(rows * obs_dim),
            starts: Vec::with_capacity(rows),
            actions: Vec::with_capacity(rows),
            log_probs: Vec::with_capacity(rows),
            values: Vec::with_capacity(rows),
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.starts.len()
    }

    /// Overwrite rows `at..at + src.rows()` with `src`'s rows.
    ///
    /// # Panics
    /// If they do not fit or `src`'s columns disagree in length.
    fn write_rows(&mut self, at: usize, src: &Acted, obs_dim: usize) {
        let rows = at..at + src.rows();
        self.obs[rows.start * obs_dim..rows.end * obs_dim].copy_from_slice(&src.obs);
        self.starts[rows.clone()].copy_from_slice(&src.starts);
        self.actions[rows.clone()].copy_from_slice(&src.actions);
        self.log_probs[rows.clone()].copy_from_slice(&src.log_probs);
        self.values[rows].copy_from_slice(&src.values);
    }

    /// Append row `k` of `src`.
    fn push_row(&mut self, src: &Acted, k: usize, obs_dim: usize) {
        self.obs
            .extend_from_slice(&src.obs[k * obs_dim..(k + 1) * obs_dim]);
        self.starts.push(src.starts[k]);
        self.actions.push(src.actions[k]);
        self.log_probs.push(src.log_probs[k]);
        self.values.push(src.values[k]);
    }
}

/// One step of all `N` copies, for [`Rollout::push`].
///
/// # Shapes
/// - `acted`: `N` rows; `rewards`, `dones`: `[N]`.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    /// What the policy read and chose.
    pub acted: &'a Acted,
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
/// - `acted`: `T·N` rows; `rewards`, `dones`: `[T, N]`; all time-major, filled up to
///   [`Rollout::len`] steps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rollout {
    steps: usize,
    n_envs: usize,
    obs_dim: usize,
    len: usize,
    /// Observations, starts, actions, log-probabilities and values (flattened in the
    /// serialized form, which keeps checkpoints' `rollout` fields as they were).
    #[serde(flatten)]
    pub acted: Acted,
    /// Rewards.
    pub rewards: Vec<f32>,
    /// The step ended the episode.
    pub dones: Vec<bool>,
}

/// The rows `envs` of a full rollout, batch-major (ready for a memory policy's `[B, T, …]`
/// forward), with their advantages and returns.
///
/// # Shapes
/// - `acted`: `B·T` rows; `gae`: `[B, T]`, where `B = envs.len()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Minibatch {
    /// The env rows, in batch order.
    pub envs: Vec<usize>,
    /// Time steps `T`.
    pub steps: usize,
    /// Observations, starts, actions, log-probabilities and values at collection.
    pub acted: Acted,
    /// GAE advantages and value targets of the same rows.
    pub gae: Gae,
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
            acted: Acted::zeros(tn, obs_dim),
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
        let (n, t) = (self.n_envs, self.len);
        assert_eq!(tr.acted.rows(), n, "a transition holds one row per copy");
        let rows = t * n..(t + 1) * n;
        self.acted.write_rows(rows.start, tr.acted, self.obs_dim);
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
        let mut step = Acted::zeros(n, self.obs_dim);
        let mut episodes = Vec::new();
        while !self.is_full() {
            env.episode_starts(&mut step.starts);
            step.obs.copy_from_slice(&current.obs);
            act(
                &step.obs,
                &step.starts,
                PolicyOutput {
                    actions: &mut step.actions,
                    log_probs: &mut step.log_probs,
                    values: &mut step.values,
                },
            );
            env.step(&step.actions, current);
            self.push(Transition {
                acted: &step,
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
            &self.acted.values,
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
            acted: Acted::with_capacity(b * t_len, d),
            gae: Gae {
                advantages: Vec::with_capacity(b * t_len),
                returns: Vec::with_capacity(b * t_len),
            },
        };
        for &e in envs {
            assert!(e < n, "env row {e} out of range (N = {n})");
            for t in 0..t_len {
                let k = t * n + e;
                mb.acted.push_row(&self.acted, k, d);
                mb.gae.advantages.push(gae.advantages[k]);
                mb.gae.returns.push(gae.returns[k]);
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
            let acted = Acted {
                obs: (0..n * d).map(|j| (10 * t + j) as f32).collect(),
                starts: vec![t == 0, false],
                actions: vec![t, t + 1],
                log_probs: vec![0.0; 2],
                values: vec![t as f32, -(t as f32)],
            };
            rollout.push(Transition {
                acted: &acted,
                rewards: &[1.0, 0.0],
                dones: &[false; 2],
            });
        }
        let g = rollout.gae(&[0.0, 0.0], 1.0, 1.0);
        let mb = rollout.minibatch(&[1], &g);
        assert_eq!(mb.acted.obs, [2.0, 3.0, 12.0, 13.0, 22.0, 23.0]);
        assert_eq!(mb.acted.actions, [1, 2, 3]);
        assert_eq!(mb.acted.values, [0.0, -1.0, -2.0]);
        assert_eq!(mb.acted.starts, [false; 3]);
        // Copy 1 gets no reward, so its returns are zero and A = −V.
        assert_eq!(mb.gae.returns, [0.0; 3]);
        assert_eq!(mb.gae.advantages, [0.0, 1.0, 2.0]);
    }
}
