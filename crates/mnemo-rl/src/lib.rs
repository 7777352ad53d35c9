//! Reinforcement learning with memory (tracker issue 13): seeded, vectorised, partially
//! observed environments where memory is necessary, the rollout buffer, generalised advantage
//! estimation, and renderings of episodes.
//!
//! - [`env`]: the [`env::Env`] trait, the T-maze and the egocentric maze, [`env::VecEnv`] and
//!   the `[env]` config ([`env::EnvConfig`]).
//! - [`rollout`]: the `[T, N]` rollout buffer and minibatches of whole env rows for memory
//!   policies.
//! - [`gae`]: GAE(γ, λ) advantages and returns.
//! - [`render`]: ASCII frames and PNG strips of episodes.
//!
//! Everything here is pure Rust on host vectors; the policy and the PPO update live in
//! `policy` and `ppo`.

pub mod agent;
pub mod env;
pub mod gae;
pub mod policy;
pub mod ppo;
pub mod render;
pub mod rollout;
pub mod train;
