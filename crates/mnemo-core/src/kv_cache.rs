//! The key/value cache of causal self-attention for step-by-step decoding, shared by the
//! Transformer language model and the Transformer decoder of the translation model (as candle's
//! `kv_cache.rs` serves every model). The Feedback models keep their memories in
//! `mnemo_models::feedback::FeedbackMemory` instead: they attend to memories, not to a layer's
//! own keys.
use burn::tensor::{Int, Tensor};

/// Keys and values of one causal self-attention layer for step-by-step decoding, in a
/// preallocated buffer written in place. Values may be wider per head than keys (the CAN
/// decoder's values live in the feed-forward width).
///
/// A step attends to itself and the `span - 1` positions before it (as the parallel pass). The
/// buffer grows by doubling up to `2·span` slots; once full, the newest `span - 1` slots are moved
/// to the front (one copy every `span + 1` steps), so the live keys are always one contiguous view.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Keys `[B, H, capacity, Dh]` (None before the first step).
    keys: Option<Tensor<4>>,
    /// Values `[B, H, capacity, Dh]`.
    values: Option<Tensor<4>>,
    /// Slots in use, `0..len`.
    len: usize,
    /// Attention span S.
    span: usize,
}

/// Initial number of slots of a [`KvCache`] (capped at `2·span`).
const INITIAL_SLOTS: usize = 32;

impl KvCache {
    /// An empty cache for span `span` (≥ 1).
    pub fn new(span: usize) -> Self {
        assert!(span >= 1, "span must be at least 1");
        Self {
            keys: None,
            values: None,
            len: 0,
            span,
        }
    }

    /// Number of slots in use (at most `2·span`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Write one position's key and value; return views of the keys and values it attends to,
    /// oldest first: the last `min(steps, span)` positions, itself included. Drop the views
    /// before the next push, or that write copies the buffer.
    ///
    /// # Shapes
    /// - k: `[B, H, 1, Dh]`; v: `[B, H, 1, Dv]` (Dv = Dh in attention; the same at every push)
    /// - output: keys `[B, H, n, Dh]`, values `[B, H, n, Dv]`
    pub fn push(&mut self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [b, h, _, dh] = k.dims();
        let dv = v.dims()[3];
        let max_slots = 2 * self.span;
        let capacity = self.keys.as_ref().map_or(0, |x| x.dims()[2]);
        if self.len == capacity {
            if capacity < max_slots {
                // Grow (first step or doubling): one allocation, the old slots copied once.
                let new_cap = (2 * capacity).clamp(INITIAL_SLOTS.min(max_slots), max_slots);
                let device = k.device();
                let grow = |old: Option<Tensor<4>>, width: usize| {
                    let pad = Tensor::<4>::zeros([b, h, new_cap - capacity, width], &device);
                    match old {
                        Some(old) => Tensor::cat(vec![old, pad], 2),
                        None => pad,
                    }
                };
                self.keys = Some(grow(self.keys.take(), dh));
                self.values = Some(grow(self.values.take(), dv));
            } else {
                // Full: keep the newest span - 1 slots at the front.
                let keep = self.span - 1;
                let front = |x: &mut Option<Tensor<4>>, width: usize| {
                    let buf = x.take().expect("allocated");
                    let live = buf.clone().slice_dim(2, capacity - keep..capacity);
                    *x = Some(buf.slice_assign([0..b, 0..h, 0..keep, 0..width], live));
                };
                front(&mut self.keys, dh);
                front(&mut self.values, dv);
                self.len = keep;
            }
        }
        let slot = self.len;
        let keys = self.keys.as_mut().expect("allocated");
        keys.inplace(|buf| buf.slice_assign([0..b, 0..h, slot..slot + 1, 0..dh], k));
        let values = self.values.as_mut().expect("allocated");
        values.inplace(|buf| buf.slice_assign([0..b, 0..h, slot..slot + 1, 0..dv], v));
        self.len += 1;
        let n = self.len.min(self.span);
        let live = self.len - n..self.len;
        (
            keys.clone().slice_dim(2, live.clone()),
            values.clone().slice_dim(2, live),
        )
    }

    /// Keep the rows `rows`, in that order (beam search reorders and duplicates rows).
    ///
    /// # Shapes
    /// - rows: `[B']`, indices into `0..B`
    pub fn select(&mut self, rows: &Tensor<1, Int>) {
        self.keys = self.keys.take().map(|x| x.select(0, rows.clone()));
        self.values = self.values.take().map(|x| x.select(0, rows.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through its growth (32 → 64 → 80 slots) and slides, each push returns exactly the last
    /// `min(t + 1, span)` keys/values, oldest first; rows can be reordered.
    #[test]
    fn keeps_the_last_span_positions() {
        let device = mnemo_backend::test_device().inner();
        let span = 40;
        let mut cache = KvCache::new(span);
        assert!(cache.is_empty());
        for t in 0..150usize {
            let k = Tensor::<4>::from_floats([[[[t as f32]]], [[[t as f32 + 1000.0]]]], &device);
            let (keys, values) = cache.push(k.clone(), k.neg());
            let n = (t + 1).min(span);
            let row0: Vec<f32> = (t + 1 - n..=t).map(|i| i as f32).collect();
            let want: Vec<f32> = row0
                .iter()
                .copied()
                .chain(row0.iter().map(|v| v + 1000.0))
                .collect();
            let keys: Vec<f32> = keys.into_data().try_to_vec::<f32>().unwrap();
            let values: Vec<f32> = values.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(keys, want, "keys at step {t}");
            assert_eq!(
                values,
                want.iter().map(|v| -v).collect::<Vec<_>>(),
                "values at step {t}"
            );
            assert!(cache.len() <= 2 * span);
        }
        cache.select(&Tensor::from_data(
            burn::tensor::TensorData::new(vec![1i64, 1, 0], [3]),
            &device,
        ));
        let (keys, _) = cache.push(
            Tensor::zeros([3, 1, 1, 1], &device),
            Tensor::zeros([3, 1, 1, 1], &device),
        );
        let keys: Vec<f32> = keys.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(keys[span - 2], 1149.0, "row 0 is the old row 1");
        assert_eq!(keys[3 * span - 2], 149.0, "row 2 is the old row 0");
    }

    /// Values twice as wide as the keys (the CAN decoder's) keep their width through the
    /// growth and the slides: each push returns the last `min(t + 1, span)` value rows.
    #[test]
    fn values_may_be_wider_than_keys() {
        let device = mnemo_backend::test_device().inner();
        let span = 3;
        let mut cache = KvCache::new(span);
        for t in 0..10usize {
            let k = Tensor::<4>::from_floats([[[[t as f32]]]], &device);
            let v = Tensor::<4>::from_floats([[[[t as f32, -(t as f32)]]]], &device);
            let (keys, values) = cache.push(k, v);
            let n = (t + 1).min(span);
            assert_eq!(keys.dims(), [1, 1, n, 1], "keys at step {t}");
            let want: Vec<f32> = (t + 1 - n..=t)
                .flat_map(|i| [i as f32, -(i as f32)])
                .collect();
            let values: Vec<f32> = values.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(values, want, "values at step {t}");
        }
    }
}
