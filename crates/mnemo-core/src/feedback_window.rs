//! The Feedback Transformer's memory window: a preallocated key/value buffer for one segment.
//!
//! Layout (as in the official code's per-segment cache): the buffer has `S + T` slots. Slots
//! `0..S` hold the keys/values of the S memories carried in from the previous segment (or of
//! zero memories for a fresh stream); step `t` of the segment writes slot `S + t` in place and
//! attends to slots `t .. t + S`, which are the S memories before it, oldest first.
use burn::tensor::Tensor;

/// Keys and values of the memories of one segment, written one step at a time.
#[derive(Debug, Clone)]
pub struct FeedbackWindow {
    keys: Tensor<4>,
    values: Tensor<4>,
    span: usize,
}

impl FeedbackWindow {
    /// A window seeded with the keys/values of the S carried memories, with room for
    /// `segment_len` more (the buffer is allocated once here).
    ///
    /// # Shapes
    /// - keys, values: `[B, H, S, Dh]`
    pub fn new(keys: Tensor<4>, values: Tensor<4>, segment_len: usize) -> Self {
        let [b, h, s, dh] = keys.dims();
        let device = keys.device();
        let pad = Tensor::<4>::zeros([b, h, segment_len, dh], &device);
        Self {
            keys: Tensor::cat(vec![keys, pad.clone()], 2),
            values: Tensor::cat(vec![values, pad], 2),
            span: s,
        }
    }

    /// The span S (number of memories a step attends to).
    pub fn span(&self) -> usize {
        self.span
    }

    /// The keys and values step `t` attends to: memories `t - S .. t - 1`, oldest first.
    ///
    /// # Shapes
    /// - output: `[B, H, S, Dh]` each
    pub fn view(&self, t: usize) -> (Tensor<4>, Tensor<4>) {
        let range = t..t + self.span;
        (
            self.keys.clone().slice_dim(2, range.clone()),
            self.values.clone().slice_dim(2, range),
        )
    }

    /// Write the key and value of step `t`'s memory in place.
    ///
    /// # Shapes
    /// - k, v: `[B, H, 1, Dh]`
    pub fn write(&mut self, t: usize, k: Tensor<4>, v: Tensor<4>) {
        let slot = self.span + t;
        let [b, h, _, dh] = k.dims();
        let ranges = [0..b, 0..h, slot..slot + 1, 0..dh];
        self.keys.inplace(|buf| buf.slice_assign(ranges.clone(), k));
        self.values.inplace(|buf| buf.slice_assign(ranges, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_sees_the_previous_span_memories() {
        let device = mnemo_backend::test_device();
        let init = Tensor::<4>::from_floats([[[[-2.0], [-1.0]]]], &device); // S = 2
        let mut window = FeedbackWindow::new(init.clone(), init, 3);
        for t in 0..3 {
            let (k, _) = window.view(t);
            let k: Vec<f32> = k.into_data().try_to_vec::<f32>().unwrap();
            let want: Vec<f32> = (t as i32 - 2..t as i32).map(|v| v as f32).collect();
            assert_eq!(k, want, "step {t}");
            let new = Tensor::<4>::full([1, 1, 1, 1], t as f32, &device);
            window.write(t, new.clone(), new);
        }
    }
}
