//! Proximal Policy Optimisation with GAE: the `[ppo]` config and the loss of a minibatch.
mod config;
mod loss;

pub use config::{Algorithm, PpoConfig};
pub use loss::{PpoStats, PpoTargets, normalized, ppo_loss};
