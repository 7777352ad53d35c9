//! Environments: the [`Env`] trait, the two tasks (T-maze, egocentric maze), their
//! configuration, and [`VecEnv`], N seeded copies stepped together.
//!
//! An environment owns its random number generator (a [`ChaCha8Rng`] on its own stream), so its
//! whole state — layout, agent, step counter and RNG position — is one serde value: saving it
//! and loading it back continues the exact same episodes.
//!
//! Adding an environment: implement [`Env`] on a serde type, add a variant to [`AnyEnv`] and its
//! config to [`EnvKind`]. Trainers only see [`EnvConfig::build`] and [`VecEnv`].
//!
//! [`ChaCha8Rng`]: rand_chacha::ChaCha8Rng

mod any;
mod config;
mod episode;
mod grid;
mod maze;
mod rng_serde;
mod tmaze;
mod vec_env;

pub use any::AnyEnv;
pub use config::{EnvConfig, EnvConfigError, EnvKind};
pub use episode::{EpisodeInfo, EpisodeSummary};
pub use grid::{Grid, Heading, Pos};
pub use maze::{CELL_CHANNELS, Maze, MazeAction, MazeConfig};
pub use tmaze::{TMaze, TMazeConfig, TMazeObs};
pub use vec_env::{DEFAULT_PARALLEL_THRESHOLD, VecEnv, VecStep};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::render::Frame;

/// What one call to [`Env::step`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Step {
    /// Reward for this transition.
    pub reward: f32,
    /// The episode is over (terminated or cut by the time limit); the next call must be
    /// [`Env::reset`].
    pub done: bool,
    /// The episode was cut by its time limit rather than ended by the task (implies `done`).
    pub truncated: bool,
    /// At the end of an episode of a task with a success criterion (the T-maze), whether it
    /// succeeded; `None` while running and for tasks without one (the maze).
    pub success: Option<bool>,
    /// The agent reached a goal on this step (counted as goals per episode).
    pub goal: bool,
}

/// How an observation vector can be read as a sequence of tokens: `tokens × features` floats,
/// token-major. A plain vector is one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObsTokens {
    /// Number of tokens.
    pub tokens: usize,
    /// Floats per token.
    pub features: usize,
}

/// A seeded, resettable, partially observed environment with a discrete action space.
///
/// Observations are fixed-size `f32` vectors (one-hot codes) of length [`Env::obs_dim`].
/// An environment is built reset; after a step with `done` the caller resets it ([`VecEnv`]
/// does so automatically). Randomness comes only from the environment's own RNG.
pub trait Env: Send {
    /// Length of the observation vector.
    fn obs_dim(&self) -> usize;

    /// The observation as tokens (default: one token of `obs_dim` features).
    fn obs_tokens(&self) -> ObsTokens {
        ObsTokens {
            tokens: 1,
            features: self.obs_dim(),
        }
    }

    /// Names of the actions, indexed by action id (for logs and renderings).
    fn action_names(&self) -> &'static [&'static str];

    /// Number of discrete actions.
    fn n_actions(&self) -> usize {
        self.action_names().len()
    }

    /// Start a new episode (drawing a new layout / cue from the environment's RNG).
    fn reset(&mut self);

    /// Apply `action` (in `0..n_actions()`).
    ///
    /// # Panics
    /// If `action >= n_actions()`.
    fn step(&mut self, action: usize) -> Step;

    /// Write the current observation into `out`.
    ///
    /// # Shapes
    /// - `out`: `[obs_dim]`, fully overwritten.
    fn observe(&self, out: &mut [f32]);

    /// Steps taken in the current episode (0 right after a reset).
    fn elapsed(&self) -> usize;

    /// A god's-eye picture of the current state, for [`crate::render`].
    fn frame(&self) -> Frame;
}

/// The RNG of copy `index` of an environment seeded with `seed`: ChaCha8 seeded from `seed`, on
/// stream `index`, so copies are independent and each is reproducible on its own.
pub fn env_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}
