//! [`AnyEnv`]: one of the built-in environments, chosen at run time from an [`EnvKind`].
//!
//! [`EnvKind`]: super::EnvKind
use serde::{Deserialize, Serialize};

use super::{Env, Maze, ObsTokens, Step, TMaze};
use crate::render::Frame;

/// A built-in environment (what [`super::EnvConfig::build`] makes); serialisable, so a
/// [`super::VecEnv<AnyEnv>`] can be checkpointed whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnyEnv {
    /// The T-maze.
    #[serde(rename = "tmaze")]
    TMaze(TMaze),
    /// The egocentric maze.
    Maze(Maze),
}

macro_rules! each {
    ($self:expr, $env:ident => $body:expr) => {
        match $self {
            AnyEnv::TMaze($env) => $body,
            AnyEnv::Maze($env) => $body,
        }
    };
}

impl Env for AnyEnv {
    fn obs_dim(&self) -> usize {
        each!(self, e => e.obs_dim())
    }

    fn obs_tokens(&self) -> ObsTokens {
        each!(self, e => e.obs_tokens())
    }

    fn action_names(&self) -> &'static [&'static str] {
        each!(self, e => e.action_names())
    }

    fn reset(&mut self) {
        each!(self, e => e.reset())
    }

    fn step(&mut self, action: usize) -> Step {
        each!(self, e => e.step(action))
    }

    fn observe(&self, out: &mut [f32]) {
        each!(self, e => e.observe(out))
    }

    fn elapsed(&self) -> usize {
        each!(self, e => e.elapsed())
    }

    fn frame(&self) -> Frame {
        each!(self, e => e.frame())
    }
}
