//! The `[models.<name>]` table shared by the language-model and translation experiment
//! configs: checking every entry, and picking one for a run.
use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::Device;
use mnemo_models::{Model, ModelConfig, Seq2Seq, Seq2SeqConfig};

use crate::experiment::{ConfigError, check_name};
use crate::feedback_step::step_products;

/// A model config that can stand in a `[models.<name>]` table.
pub trait ModelEntry: Clone {
    /// The model it builds.
    type Module: Module;
    /// Build the model on `device` (parameters drawn lazily from the device's generator), with
    /// a Feedback core's per-step products fixed for that device
    /// ([`step_products`](crate::feedback_step::step_products)).
    fn init(&self, device: &Device) -> Self::Module;
    /// Vocabulary size (0 = to be filled in from the data).
    fn vocab_size(&self) -> usize;
    /// Set the vocabulary size.
    fn set_vocab_size(&mut self, vocab_size: usize);
    /// Check every field; the error names the field relative to the table.
    fn check(&self) -> Result<(), mnemo_models::ConfigError>;
}

impl ModelEntry for ModelConfig {
    type Module = Model;
    fn init(&self, device: &Device) -> Model {
        ModelConfig::init(self, device).with_step_products(step_products(device))
    }
    fn vocab_size(&self) -> usize {
        ModelConfig::vocab_size(self)
    }
    fn set_vocab_size(&mut self, vocab_size: usize) {
        ModelConfig::set_vocab_size(self, vocab_size)
    }
    fn check(&self) -> Result<(), mnemo_models::ConfigError> {
        self.validate()
    }
}

impl ModelEntry for Seq2SeqConfig {
    type Module = Seq2Seq;
    fn init(&self, device: &Device) -> Seq2Seq {
        Seq2SeqConfig::init(self, device).with_step_products(step_products(device))
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn set_vocab_size(&mut self, vocab_size: usize) {
        self.vocab_size = vocab_size;
    }
    fn check(&self) -> Result<(), mnemo_models::ConfigError> {
        self.validate()
    }
}

/// `model`'s own check, with its errors named `models.<name>.<field>`.
fn check_model<M: ModelEntry>(name: &str, model: &M) -> Result<(), ConfigError> {
    model
        .check()
        .map_err(|e| ConfigError::field(format!("models.{name}.{}", e.field), e.message))
}

/// Check a whole table: at least one model (`example` names one in the error), safe names, and
/// every model's fields, with `placeholder_vocab` standing in for a vocabulary size the data
/// will fill in.
pub fn validate_models<M: ModelEntry>(
    models: &BTreeMap<String, M>,
    example: &str,
    placeholder_vocab: usize,
) -> Result<(), ConfigError> {
    if models.is_empty() {
        return Err(ConfigError::field(
            "models",
            format!("at least one model is required (e.g. [models.{example}])"),
        ));
    }
    for (name, model) in models {
        check_name(&format!("models.{name}"), name)?;
        let mut model = model.clone();
        if model.vocab_size() == 0 {
            model.set_vocab_size(placeholder_vocab);
        }
        check_model(name, &model)?;
    }
    Ok(())
}

/// The table of a single run: only model `name`, with its vocabulary size set and checked.
pub fn single_model<M: ModelEntry>(
    models: &BTreeMap<String, M>,
    name: &str,
    vocab_size: usize,
) -> Result<BTreeMap<String, M>, ConfigError> {
    let mut model = models.get(name).cloned().ok_or_else(|| {
        let names: Vec<&str> = models.keys().map(String::as_str).collect();
        ConfigError::field(
            "models",
            format!(
                "no model named `{name}`; the config has: {}",
                names.join(", ")
            ),
        )
    })?;
    model.set_vocab_size(vocab_size);
    check_model(name, &model)?;
    Ok(BTreeMap::from([(name.to_string(), model)]))
}
