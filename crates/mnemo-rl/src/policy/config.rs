//! `[models.<name>]` of an RL experiment: one table for every memory core, so that the policies
//! compared differ in their memory mechanism only.
use burn::tensor::Device;
use mnemo_models::{ConfigError, StackConfig};
use serde::{Deserialize, Serialize};

use mnemo_models::transformer_xl::XlLayer;

use super::{Policy, PolicyCore, WindowTransformer, XlCore};

/// Which memory sits between the observation encoder and the heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoreKind {
    /// The Feedback core: every step attends to the last `span` memories, each the mix of all
    /// layers' states of its step; memory reaches further back through the recurrence.
    Feedback,
    /// The causal Transformer over the last `span` observations (the current one included),
    /// recomputed at every step: it can know nothing older.
    Transformer,
    /// Transformer-XL: every layer attends over its last `span` inputs (a detached memory) and
    /// the current step, so the reach is `n_layers · span` steps.
    Xl,
}

impl CoreKind {
    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            CoreKind::Feedback => "feedback",
            CoreKind::Transformer => "transformer",
            CoreKind::Xl => "xl",
        }
    }
}

mnemo_models::model_config! {
    /// A policy: observation encoder → memory core → final norm → policy and value heads.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PolicyConfig {
        /// The memory core.
        pub kind: CoreKind,
        @sizes
        /// Feedback: memory span S (memories attended per step). Transformer: window W (steps
        /// seen, the current one included). XL: memory M of every layer (earlier steps each
        /// layer sees).
        pub span: usize,
        @norm
        /// Feedback only: one key/value projection for all layers (the paper's choice).
        #[serde(default = "yes")]
        pub share_kv: bool,
        /// Length of an observation vector (0 = filled in from the environment).
        #[serde(default)]
        pub obs_dim: usize,
        /// Number of actions (0 = filled in from the environment).
        #[serde(default)]
        pub n_actions: usize,
    }
}

fn yes() -> bool {
    true
}

impl PolicyConfig {
    /// The sizes of the layer stack.
    pub fn stack(&self) -> StackConfig {
        StackConfig {
            d_model: self.d_model,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            d_ff: self.d_ff,
            dropout: 0.0,
            norm: self.norm,
            placement: self.placement,
        }
    }

    /// Check every field; the error names it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // The stack's checks; a vocabulary of 1 stands in (a policy has none).
        self.stack().validate(1, self.span)?;
        if self.obs_dim == 0 {
            return Err(ConfigError::new(
                "obs_dim",
                "must be >= 1 (set from the environment)",
            ));
        }
        if self.n_actions < 2 {
            return Err(ConfigError::new(
                "n_actions",
                "must be >= 2 (set from the environment)",
            ));
        }
        if self.kind == CoreKind::Transformer && self.span < 2 {
            return Err(ConfigError::new(
                "span",
                "the Transformer's window must be >= 2 (the current observation and one before)",
            ));
        }
        if self.kind != CoreKind::Feedback && !self.share_kv {
            return Err(ConfigError::new(
                "share_kv",
                "applies to the Feedback core only; remove it for kind = \"transformer\" or \"xl\"",
            ));
        }
        Ok(())
    }

    /// Build the policy (parameters drawn from the device's generator).
    pub fn init(&self, device: &Device) -> Policy {
        let stack = self.stack();
        let d = self.d_model;
        let core = match self.kind {
            CoreKind::Feedback => {
                PolicyCore::Feedback(stack.feedback_core(self.span, self.share_kv).init(device))
            }
            CoreKind::Transformer => PolicyCore::Transformer(WindowTransformer {
                layers: (0..self.n_layers)
                    .map(|_| stack.transformer_layer(self.span, device))
                    .collect(),
                window: self.span,
            }),
            CoreKind::Xl => PolicyCore::Xl(XlCore {
                // The table holds every distance a layer sees: 0..=M.
                layers: (0..self.n_layers)
                    .map(|_| {
                        XlLayer::new(stack.transformer_layer(self.span + 1, device), self.span)
                    })
                    .collect(),
                memory_len: self.span,
            }),
        };
        Policy {
            encoder: burn::nn::LinearConfig::new(self.obs_dim, d).init(device),
            core,
            final_norm: stack.final_norm(device),
            actor: burn::nn::LinearConfig::new(d, self.n_actions).init(device),
            critic: burn::nn::LinearConfig::new(d, 1).init(device),
        }
    }
}
