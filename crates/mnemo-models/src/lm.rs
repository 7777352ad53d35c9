//! The one language-model interface every mnemo architecture exposes.
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use mnemo_core::host::to_vec;
use serde::{Deserialize, Serialize};

use crate::feedback::StepProducts;
use crate::feedback::{FeedbackLm, FeedbackState};
use crate::transformer::{TransformerLm, TransformerState};
use crate::transformer_xl::{TransformerXlLm, TransformerXlState};
use mnemo_core::{HostTensor, SegmentMemory};

/// Any mnemo language model.
// One per run, built once and held, not moved per step: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    /// The causal Transformer baseline.
    Transformer(TransformerLm),
    /// The Feedback Transformer.
    Feedback(FeedbackLm),
    /// Transformer-XL with a per-layer memory schedule.
    TransformerXl(TransformerXlLm),
}

/// What a model carries from one segment or step to the next.
#[derive(Debug, Clone)]
// Moved once per segment or step, beside tensor work that dwarfs a 1 KB copy; boxing would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum ModelState {
    /// A Transformer's per-layer attention states: key/value caches for step-by-step
    /// decoding, and the fast weights carried between segments by layers with `carry = true`.
    Transformer(TransformerState),
    /// The Feedback Transformer's last S memories.
    Feedback(FeedbackState),
    /// Transformer-XL's per-layer detached memories.
    TransformerXl(TransformerXlState),
}

/// Logits for a whole segment, and the state to carry into the next one.
#[derive(Debug, Clone)]
pub struct SegmentOutput {
    /// Next-token (or label) logits. Shape `[B, T, V]`.
    pub logits: Tensor<3>,
    /// State for the next segment (detached: no gradient flows across segments).
    pub state: ModelState,
}

/// Logits for one step, and the state for the next step.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// Logits. Shape `[B, V]`.
    pub logits: Tensor<2>,
    /// State for the next step.
    pub state: ModelState,
}

impl SegmentOutput {
    /// A model's `(logits, state)`, its state wrapped as a [`ModelState`] by `variant`.
    fn of<S>((logits, state): (Tensor<3>, S), variant: fn(S) -> ModelState) -> Self {
        SegmentOutput {
            logits,
            state: variant(state),
        }
    }
}

impl StepOutput {
    /// A model's `(logits, state)`, its state wrapped as a [`ModelState`] by `variant`.
    fn of<S>((logits, state): (Tensor<2>, S), variant: fn(S) -> ModelState) -> Self {
        StepOutput {
            logits,
            state: variant(state),
        }
    }
}

impl Model {
    /// The state of a fresh stream (no history) for `batch` rows.
    pub fn init_state(&self, batch: usize, device: &Device) -> ModelState {
        match self {
            Model::Transformer(m) => ModelState::Transformer(m.init_state()),
            Model::Feedback(m) => ModelState::Feedback(m.init_state(batch, device)),
            Model::TransformerXl(m) => ModelState::TransformerXl(m.init_state()),
        }
    }

    /// Run a segment (teacher forcing), carrying `state` in.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - output logits: `[B, T, V]`
    pub fn forward_segment(&self, tokens: Tensor<2, Int>, state: ModelState) -> SegmentOutput {
        self.segment(tokens, state, false)
    }

    /// [`forward_segment`](Self::forward_segment) for inference: a Feedback model built with
    /// host step products runs its per-step work on the host kernels (see
    /// [`FeedbackLm::infer_segment`]); other models run `forward_segment`.
    ///
    /// # Shapes
    /// - tokens: `[B, T]`
    /// - output logits: `[B, T, V]`
    pub fn infer_segment(&self, tokens: Tensor<2, Int>, state: ModelState) -> SegmentOutput {
        self.segment(tokens, state, true)
    }

    /// The same model with a Feedback core's per-step products computed by `products` (fixed
    /// when the model is built for a device; other models have none).
    pub fn with_step_products(self, products: StepProducts) -> Self {
        match self {
            Model::Feedback(m) => Model::Feedback(m.with_step_products(products)),
            other => other,
        }
    }

    fn segment(&self, tokens: Tensor<2, Int>, state: ModelState, inference: bool) -> SegmentOutput {
        match (self, state) {
            (Model::Transformer(m), ModelState::Transformer(s)) => {
                SegmentOutput::of(m.forward_segment(tokens, s), ModelState::Transformer)
            }
            (Model::Feedback(m), ModelState::Feedback(s)) => {
                let out = match inference {
                    true => m.infer_segment(tokens, s),
                    false => m.forward_segment(tokens, s),
                };
                SegmentOutput::of(out, ModelState::Feedback)
            }
            (Model::TransformerXl(m), ModelState::TransformerXl(s)) => {
                SegmentOutput::of(m.forward_segment(tokens, s), ModelState::TransformerXl)
            }
            (model, state) => model.refuse(&state),
        }
    }

    /// Run one step (generation), carrying `state` in.
    ///
    /// # Shapes
    /// - token: `[B]`
    /// - output logits: `[B, V]`
    pub fn forward_step(&self, token: Tensor<1, Int>, state: ModelState) -> StepOutput {
        match (self, state) {
            (Model::Transformer(m), ModelState::Transformer(s)) => {
                StepOutput::of(m.forward_step(token, s), ModelState::Transformer)
            }
            (Model::Feedback(m), ModelState::Feedback(s)) => {
                StepOutput::of(m.forward_step(token, s), ModelState::Feedback)
            }
            (Model::TransformerXl(m), ModelState::TransformerXl(s)) => {
                StepOutput::of(m.forward_step(token, s), ModelState::TransformerXl)
            }
            (model, state) => model.refuse(&state),
        }
    }

    /// Panics: `state` belongs to another architecture.
    fn refuse(&self, state: &ModelState) -> ! {
        panic!("{} state passed to a {} model", state.kind(), self.kind())
    }

    /// Make the gradients of tensors the model keeps as equal copies the gradient of the one
    /// tensor they stand for (a Feedback model's tied attention norms,
    /// [`FeedbackCore::tie_gradients`](crate::feedback::FeedbackCore::tie_gradients)); nothing
    /// for other models. Every training step calls it before the optimizer.
    pub fn tie_gradients(&self, grads: &mut burn::optim::GradientsParams) {
        if let Model::Feedback(m) = self {
            m.core.tie_gradients(grads);
        }
    }

    /// Short name of the architecture.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Transformer(_) => "transformer",
            Model::Feedback(_) => "feedback",
            Model::TransformerXl(_) => "transformer_xl",
        }
    }

    /// Set how many earlier positions the model remembers at evaluation (`mnemo eval
    /// --mem-len N`). Transformer-XL: the layers trained with the longest memory (every layer
    /// for a uniform schedule) get `len`, short-memory layers keep theirs; relative distances
    /// past the learned table reuse its last (largest) distance vector. Feedback Transformer:
    /// every layer attends to the last `len` memories only, with the learned vectors of
    /// distances 1..=`len` ([`FeedbackLm::set_eval_span`]); `len` must be 1..=S, the trained
    /// span. Take a fresh state ([`init_state`](Self::init_state)) afterwards. Errors for the
    /// Transformer (no memory, or carried fast weights of no length) and for lengths a model
    /// cannot take.
    pub fn with_eval_memory(&mut self, len: usize) -> Result<(), String> {
        match self {
            Model::Transformer(m) if m.carries() => Err(
                "the Transformer's carried fast weights are a fixed-size sum over the whole \
                 stream, with no length to set"
                    .into(),
            ),
            Model::Transformer(_) => {
                Err("the Transformer carries no memory across segments".into())
            }
            Model::Feedback(m) => m.set_eval_span(len),
            Model::TransformerXl(m) => m.set_eval_memory(len),
        }
    }
}

impl ModelState {
    /// Short name of the architecture this state belongs to.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelState::Transformer(_) => "transformer",
            ModelState::Feedback(_) => "feedback",
            ModelState::TransformerXl(_) => "transformer_xl",
        }
    }

    /// Move the state to `device` (e.g. from an autodiff device to its inner device).
    pub fn to_device(self, device: &Device) -> Self {
        match self {
            ModelState::Transformer(s) => ModelState::Transformer(s.to_device(device)),
            ModelState::Feedback(s) => ModelState::Feedback(s.to_device(device)),
            ModelState::TransformerXl(s) => ModelState::TransformerXl(s.to_device(device)),
        }
    }
}

/// A carried state as plain numbers, for checkpoints (so a resumed run continues the stream
/// with exactly the memory an uninterrupted run would have).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StateSnapshot {
    /// A Transformer that carries nothing across segments (or none yet).
    Transformer,
    /// A Transformer's fast weights carried across segments (`carry = true`): per layer,
    /// bottom first, the tensors of [`mnemo_core::carried_snapshot`] (none for a layer with no
    /// state yet).
    TransformerCarried {
        /// Per layer: the state's tensors.
        layers: Vec<Vec<HostTensor>>,
    },
    /// Feedback memories `[B, S, D]`, row-major.
    Feedback {
        /// Shape `[B, S, D]`.
        shape: [usize; 3],
        /// Values.
        values: Vec<f32>,
    },
    /// Transformer-XL memories, one per layer (bottom first).
    TransformerXl {
        /// Per layer: shape `[B, Mₗ', D]` (`[0, 0, 0]` for an empty memory).
        shapes: Vec<[usize; 3]>,
        /// Per layer: values, row-major.
        values: Vec<Vec<f32>>,
    },
}

impl ModelState {
    /// The state between segments as plain numbers (step-by-step caches are not saved).
    pub fn snapshot(&self) -> StateSnapshot {
        match self {
            ModelState::Transformer(s) => {
                let layers: Vec<Vec<HostTensor>> = s.caches.iter().map(|c| c.snapshot()).collect();
                match layers.iter().all(Vec::is_empty) {
                    true => StateSnapshot::Transformer,
                    false => StateSnapshot::TransformerCarried { layers },
                }
            }
            ModelState::Feedback(s) => StateSnapshot::Feedback {
                shape: s.memories.dims(),
                values: to_vec(s.memories.clone()),
            },
            ModelState::TransformerXl(s) => {
                let (shapes, values) = s
                    .memories
                    .iter()
                    .map(|m| match m.states() {
                        Some(t) => (t.dims(), to_vec(t.clone())),
                        None => ([0, 0, 0], Vec::new()),
                    })
                    .unzip();
                StateSnapshot::TransformerXl { shapes, values }
            }
        }
    }
}

impl Model {
    /// Rebuild a carried state from a snapshot; errors if it belongs to another architecture
    /// or has the wrong shape for this model and `batch`.
    pub fn restore_state(
        &self,
        snapshot: &StateSnapshot,
        batch: usize,
        device: &Device,
    ) -> Result<ModelState, String> {
        let fresh = self.init_state(batch, device);
        match (&fresh, snapshot) {
            (ModelState::Transformer(_), StateSnapshot::Transformer) => Ok(fresh),
            (ModelState::Transformer(f), StateSnapshot::TransformerCarried { layers }) => {
                let Model::Transformer(m) = self else {
                    unreachable!("state kind follows the model")
                };
                if !m.carries() {
                    return Err("the snapshot holds fast weights carried across segments; \
                                this model's attention does not carry them (attention.carry)"
                        .into());
                }
                if layers.len() != f.caches.len() {
                    return Err(format!(
                        "{} layer states in the snapshot, the model has {} layers",
                        layers.len(),
                        f.caches.len()
                    ));
                }
                let caches = m
                    .layers
                    .iter()
                    .zip(layers)
                    .enumerate()
                    .map(|(l, (layer, tensors))| match &layer.attn_variant {
                        Some(v) if layer.carry => v
                            .restore_cache(tensors, batch, device)
                            .map_err(|e| format!("layer {l}: {e}")),
                        _ if tensors.is_empty() => Ok(layer.new_cache()),
                        _ => Err(format!(
                            "layer {l} carries no state, the snapshot holds one"
                        )),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(ModelState::Transformer(TransformerState { caches }))
            }
            (ModelState::Feedback(f), StateSnapshot::Feedback { shape, values }) => {
                let want = f.memories.dims();
                if *shape != want || values.len() != shape.iter().product::<usize>() {
                    return Err(format!(
                        "memory shape {shape:?} does not match the model's {want:?}"
                    ));
                }
                let memories = Tensor::from_data(TensorData::new(values.clone(), *shape), device);
                Ok(ModelState::Feedback(FeedbackState {
                    memories,
                    projected: None,
                }))
            }
            (ModelState::TransformerXl(f), StateSnapshot::TransformerXl { shapes, values }) => {
                let Model::TransformerXl(m) = self else {
                    unreachable!("state kind follows the model")
                };
                if shapes.len() != f.memories.len() || values.len() != shapes.len() {
                    return Err(format!(
                        "{} layer memories in the snapshot, the model has {} layers",
                        shapes.len(),
                        f.memories.len()
                    ));
                }
                let mut memories = Vec::with_capacity(shapes.len());
                for (l, ((shape, values), fresh)) in
                    shapes.iter().zip(values).zip(&f.memories).enumerate()
                {
                    let cap = fresh.capacity();
                    if shape[1] == 0 && values.is_empty() {
                        memories.push(SegmentMemory::new(cap));
                        continue;
                    }
                    let want = [batch, shape[1].min(cap), m.d_model()];
                    if shape[0] != batch || shape[2] != want[2] || shape[1] > cap || shape[1] == 0 {
                        return Err(format!(
                            "layer {l} memory shape {shape:?} does not fit [batch {batch}, at most {cap}, {}]",
                            want[2]
                        ));
                    }
                    if values.len() != shape.iter().product::<usize>() {
                        return Err(format!(
                            "layer {l} memory holds {} values, not {shape:?}",
                            values.len()
                        ));
                    }
                    let states = Tensor::from_data(TensorData::new(values.clone(), *shape), device);
                    memories.push(SegmentMemory::from_states(states, cap));
                }
                Ok(ModelState::TransformerXl(TransformerXlState { memories }))
            }
            _ => Err(format!(
                "state of another architecture than {}",
                self.kind()
            )),
        }
    }
}
