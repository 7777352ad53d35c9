//! The memories a segment starts from, as the manual backward uses them. When all of them are
//! zero (a fresh sequence: every sentence of the Feedback decoder, a language model's first
//! segment) every carried slot holds the same key and value: the recorded forward projects one
//! zero memory instead of B·S, and the projections' weight gradients take the carried slots'
//! key and value gradients summed into one row instead of B·S rows (those gradients are linear
//! in them, and every carried row reads the same normalised memory). The same sums in another
//! order; with S = 256 slots and sentences of ≤ 64 subwords the carried rows were most of the
//! rows of those products.
//!
//! Size legend as in [`super`]: B rows, T steps, S span, D d_model.
use burn::tensor::Tensor;

/// A segment's carried memories and whether they are all zero; see the [module docs](self).
pub(super) struct Carried {
    /// The memories, `[B, S, D]`.
    pub(super) memories: Tensor<3>,
    /// Every value is 0.
    pub(super) zero: bool,
}

impl Carried {
    /// # Shapes
    /// - memories: `[B, S, D]`
    pub(super) fn new(memories: Tensor<3>) -> Self {
        let zero = memories.clone().abs().max().into_scalar::<f32>() == 0.0;
        Self { memories, zero }
    }

    /// `project(m)` for carried memories `m` (all or the newest of them): with zero memories
    /// one of them projected and repeated.
    ///
    /// # Shapes
    /// - m: `[B, n, D]`; project: `[B', n', D] -> ([B', n', D], [B', n', D])`
    /// - output: `[B, n, D]` each
    pub(super) fn project(
        &self,
        m: Tensor<3>,
        project: impl FnOnce(Tensor<3>) -> (Tensor<3>, Tensor<3>),
    ) -> (Tensor<3>, Tensor<3>) {
        if !self.zero {
            return project(m);
        }
        let [b, n, _] = m.dims();
        let (k, v) = project(m.narrow(0, 0, 1).narrow(1, 0, 1)); // [1,1,D]
        let repeat = |x: Tensor<3>| {
            let d = x.dims()[2];
            x.expand([b, n, d])
        };
        (repeat(k), repeat(v))
    }

    /// The memory rows the projections' weight gradients read: every carried and step memory
    /// `[B·(S+T), D]`, or with zero memories the segment's `B·T` rows and one zero memory
    /// (which [`grad_rows`](Self::grad_rows) gives the carried slots' summed gradient).
    ///
    /// # Shapes
    /// - steps: the segment's memories `[B, T, D]`
    /// - output: `[N, D]`
    pub(super) fn memory_rows(&self, steps: Tensor<3>) -> Tensor<2> {
        let [b, t_len, d] = steps.dims();
        if !self.zero {
            let s = self.memories.dims()[1];
            let all = Tensor::cat(vec![self.memories.clone(), steps], 1);
            return all.reshape([b * (s + t_len), d]);
        }
        let zero = Tensor::zeros([1, d], &self.memories.device());
        Tensor::cat(vec![steps.reshape([b * t_len, d]), zero], 0)
    }

    /// One projection's key (or value) gradient as the rows of
    /// [`memory_rows`](Self::memory_rows): every slot's, or with zero memories the step slots'
    /// and the carried slots' sum.
    ///
    /// # Shapes
    /// - grad: `[B, H, S+T, Dh]`
    /// - output: `[N, H·Dh]`
    pub(super) fn grad_rows(&self, grad: Tensor<4>) -> Tensor<2> {
        let [_, heads, slots, dh] = grad.dims();
        let merge = |g: Tensor<4>| {
            let [b, _, n, _] = g.dims();
            g.swap_dims(1, 2).reshape([b * n, heads * dh])
        };
        if !self.zero {
            return merge(grad);
        }
        let s = self.memories.dims()[1];
        let summed = grad.clone().narrow(2, 0, s).sum_dim(2).sum_dim(0); // [1,H,1,Dh]
        Tensor::cat(vec![merge(grad.narrow(2, s, slots - s)), merge(summed)], 0)
    }
}
