//! [`VecEnv`]: N copies of an environment stepped together, with automatic reset of finished
//! copies and per-episode statistics; rows are stepped in parallel with rayon when N is large.
//!
//! Each copy owns its RNG, so results do not depend on the order or the threads rows are
//! stepped on: serial and parallel stepping give identical results.
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Env, EpisodeInfo, ObsTokens};

/// Copies at or above which [`VecEnv::step`] uses rayon (measured: below it, thread hand-off
/// costs more than the environments' work; see docs/performance.md).
pub const DEFAULT_PARALLEL_THRESHOLD: usize = 1024;

/// Rows per rayon task (keeps tasks large enough to amortise scheduling).
const MIN_ROWS_PER_TASK: usize = 64;

/// One copy with its running episode statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Slot<E> {
    env: E,
    ret: f32,
    goals: u32,
}

/// What a row did in one step (scratch, reused).
#[derive(Debug, Clone, Copy, Default)]
struct RowResult {
    reward: f32,
    done: bool,
    truncated: bool,
    episode: Option<EpisodeInfo>,
}

/// N copies of an environment; its whole state (environments, RNGs, running returns) is one
/// serde value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VecEnv<E> {
    slots: Vec<Slot<E>>,
    #[serde(skip, default = "default_threshold")]
    parallel_threshold: usize,
    #[serde(skip)]
    scratch: Vec<RowResult>,
}

impl<E: PartialEq> PartialEq for VecEnv<E> {
    /// Equal states: same environments, RNG positions and running statistics.
    fn eq(&self, other: &Self) -> bool {
        self.slots == other.slots
    }
}

fn default_threshold() -> usize {
    DEFAULT_PARALLEL_THRESHOLD
}

/// The result of [`VecEnv::step`] for all rows; allocate once with [`VecEnv::step_buffer`].
///
/// # Shapes
/// - `obs`: `[N, obs_dim]` — the observation after the step; for a row whose episode just
///   ended, the first observation of its next episode (automatic reset).
/// - `rewards`, `dones`, `truncated`: `[N]` — the transition's reward; whether it ended the
///   episode; whether the end was a time limit.
/// - `episodes`: one entry per row that finished an episode in this step, by row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VecStep {
    /// Observations after the step (next episode's first for finished rows).
    pub obs: Vec<f32>,
    /// Rewards.
    pub rewards: Vec<f32>,
    /// The step ended the row's episode.
    pub dones: Vec<bool>,
    /// The end was the time limit.
    pub truncated: Vec<bool>,
    /// Episodes finished in this step.
    pub episodes: Vec<EpisodeInfo>,
}

impl<E: Env> VecEnv<E> {
    /// Wrap reset environments (all with the same observation size and action count).
    ///
    /// # Panics
    /// If `envs` is empty or the copies disagree on `obs_dim` or `n_actions`.
    pub fn new(envs: Vec<E>) -> Self {
        assert!(!envs.is_empty(), "a VecEnv needs at least one environment");
        let (d, a) = (envs[0].obs_dim(), envs[0].n_actions());
        assert!(
            envs.iter().all(|e| e.obs_dim() == d && e.n_actions() == a),
            "all copies of a VecEnv must share obs_dim and n_actions"
        );
        Self {
            slots: envs
                .into_iter()
                .map(|env| Slot {
                    env,
                    ret: 0.0,
                    goals: 0,
                })
                .collect(),
            parallel_threshold: DEFAULT_PARALLEL_THRESHOLD,
            scratch: Vec::new(),
        }
    }

    /// Step in parallel when there are at least `threshold` copies (0 = always,
    /// `usize::MAX` = never).
    pub fn with_parallel_threshold(mut self, threshold: usize) -> Self {
        self.parallel_threshold = threshold;
        self
    }

    /// Number of copies N.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false (a VecEnv has at least one copy).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Observation length of one copy.
    pub fn obs_dim(&self) -> usize {
        self.slots[0].env.obs_dim()
    }

    /// The observation as tokens.
    pub fn obs_tokens(&self) -> ObsTokens {
        self.slots[0].env.obs_tokens()
    }

    /// Number of actions.
    pub fn n_actions(&self) -> usize {
        self.slots[0].env.n_actions()
    }

    /// Copy `i`.
    pub fn env(&self, i: usize) -> &E {
        &self.slots[i].env
    }

    /// A [`VecStep`] of the right sizes.
    pub fn step_buffer(&self) -> VecStep {
        let n = self.len();
        VecStep {
            obs: vec![0.0; n * self.obs_dim()],
            rewards: vec![0.0; n],
            dones: vec![false; n],
            truncated: vec![false; n],
            episodes: Vec::new(),
        }
    }

    /// The current observations.
    ///
    /// # Shapes
    /// - `obs`: `[N, obs_dim]`.
    pub fn observe(&self, obs: &mut [f32]) {
        let d = self.obs_dim();
        assert_eq!(obs.len(), self.len() * d, "obs must be [N, obs_dim]");
        for (slot, out) in self.slots.iter().zip(obs.chunks_mut(d)) {
            slot.env.observe(out);
        }
    }

    /// Whether each copy's current observation is the first of its episode (a memory policy
    /// clears that row's memory before reading it).
    ///
    /// # Shapes
    /// - `out`: `[N]`.
    pub fn episode_starts(&self, out: &mut [bool]) {
        for (slot, start) in self.slots.iter().zip(out.iter_mut()) {
            *start = slot.env.elapsed() == 0;
        }
    }

    /// Start a new episode in every copy (abandoning the running ones, which are not reported).
    pub fn reset_all(&mut self) {
        for slot in &mut self.slots {
            slot.env.reset();
            slot.ret = 0.0;
            slot.goals = 0;
        }
    }

    /// Apply one action per copy; finished copies are reset and their episodes reported.
    ///
    /// # Shapes
    /// - `actions`: `[N]`, each in `0..n_actions`.
    /// - `out`: see [`VecStep`] (from [`VecEnv::step_buffer`]).
    ///
    /// # Panics
    /// If the sizes are wrong or an action is out of range.
    pub fn step(&mut self, actions: &[usize], out: &mut VecStep) {
        let (n, d) = (self.len(), self.obs_dim());
        assert_eq!(actions.len(), n, "actions must be [N]");
        assert_eq!(out.obs.len(), n * d, "out.obs must be [N, obs_dim]");
        self.scratch.resize(n, RowResult::default());
        if n >= self.parallel_threshold {
            self.slots
                .par_iter_mut()
                .zip(out.obs.par_chunks_mut(d))
                .zip(actions.par_iter())
                .zip(self.scratch.par_iter_mut())
                .with_min_len(MIN_ROWS_PER_TASK)
                .enumerate()
                .for_each(|(i, (((slot, obs), &a), r))| *r = step_row(i, slot, a, obs));
        } else {
            let rows = self
                .slots
                .iter_mut()
                .zip(out.obs.chunks_mut(d))
                .zip(actions)
                .zip(self.scratch.iter_mut());
            for (i, (((slot, obs), &a), r)) in rows.enumerate() {
                *r = step_row(i, slot, a, obs);
            }
        }
        out.rewards.resize(n, 0.0);
        out.dones.resize(n, false);
        out.truncated.resize(n, false);
        out.episodes.clear();
        for (i, r) in self.scratch.iter().enumerate() {
            out.rewards[i] = r.reward;
            out.dones[i] = r.done;
            out.truncated[i] = r.truncated;
            out.episodes.extend(r.episode);
        }
    }
}

/// Step one copy, reset it if its episode ended, and write its next observation.
fn step_row<E: Env>(i: usize, slot: &mut Slot<E>, action: usize, obs: &mut [f32]) -> RowResult {
    let step = slot.env.step(action);
    slot.ret += step.reward;
    slot.goals += step.goal as u32;
    let mut result = RowResult {
        reward: step.reward,
        done: step.done,
        truncated: step.truncated,
        episode: None,
    };
    if step.done {
        result.episode = Some(EpisodeInfo {
            env: i,
            ret: slot.ret,
            len: slot.env.elapsed(),
            success: step.success,
            goals: slot.goals,
        });
        slot.env.reset();
        slot.ret = 0.0;
        slot.goals = 0;
    }
    slot.env.observe(obs);
    result
}
