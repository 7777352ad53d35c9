//! Step-by-step decoding: read a prompt one token at a time, then sample a continuation.
//!
//! The prompt goes through [`Model::forward_step`] token by token, exactly as generation
//! would, and the output at each prompt position is kept: for a labelling task (code
//! execution) that is the model's label for the token, for a language-modelling task its
//! prediction of the next token. The continuation then feeds each new token back in. Sampling
//! is seeded (ChaCha8); temperature 0 is greedy.
use burn::tensor::{Device, Int, Tensor, TensorData};
use mnemo_models::Model;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::TrainError;

/// How to continue a prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateConfig {
    /// Tokens to generate after the prompt.
    pub max_new_tokens: usize,
    /// Softmax temperature (> 0), or 0 for greedy (argmax) decoding.
    pub temperature: f64,
    /// Seed of the sampler.
    pub seed: u64,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 16,
            temperature: 0.0,
            seed: 0,
        }
    }
}

/// What [`generate`] read and wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The prompt ids.
    pub prompt: Vec<u32>,
    /// Logits at every prompt position. Shape `[prompt.len()][V]`.
    pub prompt_logits: Vec<Vec<f32>>,
    /// Argmax of each row of `prompt_logits`.
    pub prompt_predictions: Vec<u32>,
    /// The generated continuation.
    pub generated: Vec<u32>,
}

/// Feed `prompt` through `model` one step at a time from a fresh state, then generate
/// `config.max_new_tokens` tokens. Use an inference model (`valid()`) on a plain device.
pub fn generate(
    model: &Model,
    prompt: &[u32],
    config: &GenerateConfig,
    device: &Device,
) -> Result<Generation, TrainError> {
    if prompt.is_empty() {
        return Err(TrainError::Generate(
            "the prompt is empty; give at least one token".into(),
        ));
    }
    if !config.temperature.is_finite() {
        return Err(TrainError::Generate(format!(
            "--temperature must be a finite number (0 = greedy), got {}",
            config.temperature
        )));
    }
    if config.temperature < 0.0 {
        return Err(TrainError::Generate(format!(
            "--temperature must be >= 0 (0 = greedy), got {}",
            config.temperature
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut state = model.init_state(1, device);
    let mut prompt_logits = Vec::with_capacity(prompt.len());
    let mut last = Vec::new();
    for &token in prompt {
        let out = model.forward_step(token_tensor(token, device), state);
        state = out.state;
        last = row(out.logits);
        prompt_logits.push(last.clone());
    }
    let prompt_predictions = prompt_logits.iter().map(|l| argmax(l)).collect();
    let mut generated = Vec::with_capacity(config.max_new_tokens);
    for i in 0..config.max_new_tokens {
        let next = sample(&last, config.temperature, &mut rng);
        generated.push(next);
        if i + 1 < config.max_new_tokens {
            let out = model.forward_step(token_tensor(next, device), state);
            state = out.state;
            last = row(out.logits);
        }
    }
    Ok(Generation {
        prompt: prompt.to_vec(),
        prompt_logits,
        prompt_predictions,
        generated,
    })
}

/// # Shapes
/// - output: `[1]`
fn token_tensor(token: u32, device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(vec![i64::from(token)], [1]), device)
}

/// The single row of `[1, V]` logits.
fn row(logits: Tensor<2>) -> Vec<f32> {
    logits
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 logits")
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// Draw an index from `softmax(logits / temperature)`; argmax when `temperature` is 0.
pub fn sample(logits: &[f32], temperature: f64, rng: &mut impl Rng) -> u32 {
    if temperature == 0.0 {
        return argmax(logits);
    }
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let weights: Vec<f64> = logits
        .iter()
        .map(|&l| ((l as f64 - max) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i as u32;
        }
        u -= w;
    }
    argmax(logits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_seeded_and_follows_the_temperature() {
        let logits = [0.0f32, 1.0, 2.0, 0.5];
        let draw = |t: f64, seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..2000)
                .map(|_| sample(&logits, t, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1.0, 7), draw(1.0, 7));
        assert_ne!(draw(1.0, 7), draw(1.0, 8));
        assert!(draw(0.0, 7).iter().all(|&i| i == 2));
        // At temperature 1, index 2 has probability e^2 / (1 + e + e^2 + e^0.5) ≈ 0.61.
        let share = draw(1.0, 3).iter().filter(|&&i| i == 2).count() as f64 / 2000.0;
        assert!((share - 0.61).abs() < 0.04, "{share}");
        // A tiny temperature is nearly greedy, a huge one nearly uniform.
        assert!(draw(0.01, 1).iter().all(|&i| i == 2));
        let share = draw(1e6, 1).iter().filter(|&&i| i == 0).count() as f64 / 2000.0;
        assert!((share - 0.25).abs() < 0.04, "{share}");
    }
}
