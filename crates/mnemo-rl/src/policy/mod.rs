//! The policy: observation encoder → memory core → final norm → policy and value heads.
//!
//! The memory core is the Feedback core of `mnemo-models` (the same code as the language model
//! and the translation decoder), the causal Transformer over the last W observations
//! ([`WindowTransformer`]) or Transformer-XL with a memory of M steps per layer ([`XlCore`]),
//! built from one config table ([`PolicyConfig`]).
//!
//! A policy acts step by step ([`Policy::act`]) over a [`PolicyMemory`] of N environment rows,
//! and PPO re-runs a whole rollout segment ([`Policy::segment`]) from the memory carried into
//! it; both clear a row's memory where its episode starts, and both run the same step code, so
//! the segment re-run reproduces the rollout exactly while the weights are unchanged.
//!
//! Size legend: B environment rows, T steps, O observation length, A actions, D d_model,
//! S span (Feedback), window W (Transformer) or memory M per layer (XL), L layers.
mod config;
mod fragments;
mod grads;
mod memory;
mod window;
mod xl;

pub use config::{CoreKind, PolicyConfig};
pub use fragments::Fragments;
pub use grads::Backward;
pub use memory::{Carried, PolicyMemory};
pub use window::WindowTransformer;
pub use xl::XlCore;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use mnemo_core::Norm;
use mnemo_models::feedback::FeedbackCore;

/// The memory core of a [`Policy`].
// One per policy, built once and held, not moved per step: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum PolicyCore {
    /// The Feedback core.
    Feedback(FeedbackCore),
    /// The causal Transformer over the last W observations.
    Transformer(WindowTransformer),
    /// Transformer-XL layers with a detached memory of M steps each.
    Xl(XlCore),
}

/// A policy over a memory core; see the [module docs](self).
#[derive(Module, Debug)]
pub struct Policy {
    /// Observation encoder `O -> D`.
    pub encoder: Linear,
    /// The memory core.
    pub core: PolicyCore,
    /// Final norm (pre-norm stacks only).
    pub final_norm: Option<Norm>,
    /// Action logits `D -> A`.
    pub actor: Linear,
    /// State value `D -> 1`.
    pub critic: Linear,
}

impl Policy {
    /// The memory of `rows` fresh rows (every row at the start of an episode).
    pub fn start(&self, rows: usize, device: &Device) -> PolicyMemory {
        self.memory(Carried::fresh(self, rows), device, 1)
    }

    /// The memory continuing from `carried`, with room for `room` steps before it moves.
    pub fn memory(&self, carried: Carried, device: &Device, room: usize) -> PolicyMemory {
        let state = carried.tensor(device);
        match &self.core {
            PolicyCore::Feedback(core) => PolicyMemory::Feedback(core.memory(state, room)),
            PolicyCore::Transformer(_) => PolicyMemory::Window(state),
            PolicyCore::Xl(_) => PolicyMemory::Xl(state),
        }
    }

    /// One step of every row: rows with `starts` set forget their memory first.
    ///
    /// # Shapes
    /// - obs: `[B, O]`; starts: `B` flags
    /// - output: logits `[B, A]`, values `[B]`
    pub fn act(
        &self,
        obs: Tensor<2>,
        starts: &[bool],
        memory: &mut PolicyMemory,
    ) -> (Tensor<2>, Tensor<1>) {
        let [b, o] = obs.dims();
        let top = self.step_core(obs.reshape([b, 1, o]), starts, memory);
        let (logits, values) = self.heads(top);
        (logits.reshape([b, self.n_actions()]), values.reshape([b]))
    }

    /// A segment of T steps from the memory carried into it, each row's memory cleared at its
    /// episode starts: the same computation as T calls of [`act`](Self::act).
    ///
    /// # Shapes
    /// - obs: `[B, T, O]`; starts: `B·T` flags, row-major
    /// - output: logits `[B, T, A]`, values `[B, T]`, and the memory after the segment
    pub fn segment(
        &self,
        obs: Tensor<3>,
        starts: &[bool],
        carried: Carried,
    ) -> (Tensor<3>, Tensor<2>, PolicyMemory) {
        let [b, t_len, _] = obs.dims();
        assert_eq!(starts.len(), b * t_len, "one start flag per row and step");
        let device = obs.device();
        let starts_at = |t: usize| -> Vec<bool> { (0..b).map(|r| starts[r * t_len + t]).collect() };
        let (top, memory) = match &self.core {
            PolicyCore::Feedback(_) | PolicyCore::Xl(_) => {
                let mut memory = self.memory(carried, &device, t_len);
                let tops: Vec<_> = (0..t_len)
                    .map(|t| {
                        self.step_core(obs.clone().narrow(1, t, 1), &starts_at(t), &mut memory)
                    })
                    .collect();
                (Tensor::cat(tops, 1), memory)
            }
            PolicyCore::Transformer(window) => {
                let history = carried.tensor(&device);
                let (top, history) = window.segment(&self.encoder, obs, starts, history);
                (top, PolicyMemory::Window(history))
            }
        };
        let (logits, values) = self.heads(top);
        (logits, values.squeeze_dim::<2>(2), memory)
    }

    /// Number of actions A.
    pub fn n_actions(&self) -> usize {
        self.actor.weight.dims()[1]
    }

    /// Length O of an observation.
    pub fn obs_dim(&self) -> usize {
        self.encoder.weight.dims()[0]
    }

    /// How many steps a row carries and the width of each: S memories of width D (Feedback),
    /// W − 1 raw observations of width O (Transformer), L·M layer inputs of width D (XL).
    pub fn carried_shape(&self) -> (usize, usize) {
        match &self.core {
            PolicyCore::Feedback(core) => (core.span, core.d_model()),
            PolicyCore::Transformer(w) => (w.window - 1, self.obs_dim()),
            PolicyCore::Xl(xl) => (xl.layers.len() * xl.memory_len, self.d_model()),
        }
    }

    /// Width D of the core.
    pub fn d_model(&self) -> usize {
        self.encoder.weight.dims()[1]
    }

    /// The core's top states of one step.
    ///
    /// # Shapes
    /// - obs: `[B, 1, O]`
    /// - output: `[B, 1, D]`
    fn step_core(&self, obs: Tensor<3>, starts: &[bool], memory: &mut PolicyMemory) -> Tensor<3> {
        match (&self.core, memory) {
            (PolicyCore::Feedback(core), PolicyMemory::Feedback(m)) => {
                core.reset_rows(m, starts);
                core.step_unhooked(self.encoder.forward(obs), m)
            }
            (PolicyCore::Transformer(window), PolicyMemory::Window(history)) => {
                window.step(&self.encoder, obs, starts, history)
            }
            (PolicyCore::Xl(xl), PolicyMemory::Xl(memories)) => {
                xl.step(self.encoder.forward(obs), starts, memories)
            }
            _ => panic!("a policy memory must come from the same kind of policy"),
        }
    }

    /// Policy logits `[.., A]` and values `[.., 1]` of top states `[.., D]`.
    fn heads(&self, top: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let h = match &self.final_norm {
            Some(norm) => norm.forward(top),
            None => top,
        };
        (self.actor.forward(h.clone()), self.critic.forward(h))
    }
}

/// `flags` as a float mask `[n, 1, 1]`: 0 where set, 1 elsewhere (what a reset keeps).
pub(crate) fn keep_mask(flags: &[bool], device: &Device) -> Tensor<3> {
    let keep: Vec<f32> = flags.iter().map(|&f| if f { 0.0 } else { 1.0 }).collect();
    Tensor::from_data(TensorData::new(keep, [flags.len(), 1, 1]), device)
}
