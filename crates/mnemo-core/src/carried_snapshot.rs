//! A self-attention's carried state as plain numbers, for checkpoints: the fast weights a
//! linear-attention or Performer layer carries from one training segment to the next
//! (`attention = { ..., carry = true }`), so that a resumed run continues its stream with
//! exactly the state an uninterrupted run would have.
//!
//! What is saved per layer, shapes with B rows, H heads, Dh head size, m Performer features:
//!
//! | state | tensors |
//! |---|---|
//! | none yet (no position seen) | none |
//! | linear attention, sum update | weights `[B, H, Dh, Dh]`, normaliser `[B, H, Dh]` |
//! | linear attention, delta rule | weights `[B, H, Dh, Dh]` |
//! | Performer | weights `[B, H, m, Dh]`, normaliser `[B, H, m]` |
//!
//! Key/value and sparse caches are step-by-step decoding state, never carried between
//! segments, and are not saved.
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::fast_weights::FastWeightState;
use crate::host::to_vec;
use crate::linear_attention::{FastWeightUpdate, LinearState};
use crate::self_attention::{AttentionVariant, SelfAttentionCache};

/// One tensor on the host: its shape and its values, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

impl HostTensor {
    /// The tensor's shape and values.
    pub fn of<const D: usize>(t: &Tensor<D>) -> Self {
        HostTensor {
            shape: t.dims().to_vec(),
            values: to_vec(t.clone()),
        }
    }

    /// The tensor on `device`, if it has the shape `want`; errors name `what` and both shapes.
    fn to_tensor<const D: usize>(
        &self,
        want: [usize; D],
        what: &str,
        device: &Device,
    ) -> Result<Tensor<D>, String> {
        if self.shape != want || self.values.len() != want.iter().product::<usize>() {
            return Err(format!(
                "{what}: shape {:?} with {} values, the model needs {want:?}",
                self.shape,
                self.values.len()
            ));
        }
        Ok(Tensor::from_data(
            TensorData::new(self.values.clone(), want),
            device,
        ))
    }
}

impl SelfAttentionCache {
    /// The carried fast-weight state as plain numbers (see the [module docs](self)): empty
    /// before the first position and for key/value or sparse caches.
    pub fn snapshot(&self) -> Vec<HostTensor> {
        let sum =
            |s: &FastWeightState| vec![HostTensor::of(&s.weights), HostTensor::of(&s.normalizer)];
        match self {
            SelfAttentionCache::Linear(Some(LinearState::Sum(s)))
            | SelfAttentionCache::Performer(Some(s)) => sum(s),
            SelfAttentionCache::Linear(Some(LinearState::Delta(w))) => vec![HostTensor::of(w)],
            SelfAttentionCache::Linear(None)
            | SelfAttentionCache::Performer(None)
            | SelfAttentionCache::Kv(_)
            | SelfAttentionCache::Sparse(_) => Vec::new(),
        }
    }
}

impl AttentionVariant {
    /// The state [`SelfAttentionCache::snapshot`] saved, rebuilt on `device` for `batch` rows;
    /// an empty snapshot is the fresh state. Errors when the tensors do not fit this mechanism
    /// (their number, or a shape for these heads, sizes and `batch`).
    pub fn restore_cache(
        &self,
        tensors: &[HostTensor],
        batch: usize,
        device: &Device,
    ) -> Result<SelfAttentionCache, String> {
        if tensors.is_empty() {
            return Ok(self.new_cache());
        }
        let sum = |f: usize, dh: usize, h: usize| -> Result<FastWeightState, String> {
            match tensors {
                [w, z] => Ok(FastWeightState {
                    weights: w.to_tensor([batch, h, f, dh], "fast weights", device)?,
                    normalizer: z.to_tensor([batch, h, f], "normaliser", device)?,
                }),
                _ => Err(format!(
                    "{} tensors; the sum update carries 2 (weights, normaliser)",
                    tensors.len()
                )),
            }
        };
        match self {
            AttentionVariant::Linear(a) => {
                let h = a.n_heads;
                let dh = a.query.weight.dims()[1] / h;
                let state = match (a.update, tensors) {
                    (FastWeightUpdate::Sum, _) => LinearState::Sum(sum(dh, dh, h)?),
                    (FastWeightUpdate::Delta, [w]) => LinearState::Delta(w.to_tensor(
                        [batch, h, dh, dh],
                        "fast weights",
                        device,
                    )?),
                    (FastWeightUpdate::Delta, _) => {
                        return Err(format!(
                            "{} tensors; the delta rule carries 1 (weights)",
                            tensors.len()
                        ));
                    }
                };
                Ok(SelfAttentionCache::Linear(Some(state)))
            }
            AttentionVariant::Performer(a) => {
                let [m, dh] = a.features.val().dims();
                Ok(SelfAttentionCache::Performer(Some(sum(m, dh, a.n_heads)?)))
            }
            AttentionVariant::Sparse(_) => {
                Err("sparse attention carries no state across segments".into())
            }
        }
    }
}
