//! The query, key and value maps of a layer as one product: their weights side by side,
//! `[D, 3W]`, so that the forward, the input gradient and the weight gradients are one GEMM each
//! instead of three (burn's GEMM runs `[N, D]·[D, 3W]` at a better rate than three `[N, D]·[D, W]`
//! and the three input gradients need no adds).
//!
//! Size legend as in [`super`]: N rows, D d_model, W = H·Dh.
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use mnemo_core::host::to_vec as host;

use crate::feedback::backward::params::LinearParams;
use crate::host_product::matmul;

/// The three maps, and their weights and biases concatenated.
pub(super) struct Qkv {
    /// Query, key, value (their ids; `w` and `b` hold their values).
    parts: [LinearParams; 3],
    /// `[W_q | W_k | W_v]`, `[D, 3W]`.
    w: Tensor<2>,
    /// `[b_q | b_k | b_v]` (zeros for a map without bias), `[3W]`; None if none has one.
    b: Option<Tensor<1>>,
}

impl Qkv {
    /// The query, key and value maps of an attention, in that order.
    pub(super) fn of(maps: [&Linear; 3]) -> Self {
        let parts = maps.map(|l| LinearParams::of(l, None));
        let w = Tensor::cat(parts.iter().map(|p| p.w.clone()).collect(), 1);
        let b = parts.iter().any(|p| p.b.is_some()).then(|| {
            let bias = |p: &LinearParams| {
                let out = p.w.dims()[1];
                p.b.clone()
                    .unwrap_or_else(|| Tensor::zeros([out], &p.w.device()))
            };
            Tensor::cat(parts.iter().map(bias).collect(), 0)
        });
        Self { parts, w, b }
    }

    /// The queries, keys and values of rows `h`, on the host.
    ///
    /// # Shapes
    /// - h: `[N, D]`
    /// - output: `[N, W]` each
    pub(super) fn forward(&self, h: Tensor<2>) -> [Vec<f32>; 3] {
        let y = matmul(h, self.w.clone());
        let y = match &self.b {
            Some(b) => y + b.clone().unsqueeze::<2>(),
            None => y,
        };
        let [n, w3] = y.dims();
        let w = w3 / 3;
        let y = host(y);
        let mut out = [(); 3].map(|_| Vec::with_capacity(n * w));
        for row in y.chunks_exact(w3) {
            for (part, values) in out.iter_mut().zip(row.chunks_exact(w)) {
                part.extend_from_slice(values);
            }
        }
        out
    }

    /// Register the three maps' gradients given theirs at the outputs, and return the
    /// gradient of the rows `h`: `Σ dp · W_pᵀ`.
    ///
    /// # Shapes
    /// - h: `[N, D]`; grads at the outputs `[N, W]` each (host)
    /// - output: `[N, D]`
    pub(super) fn backward(
        &self,
        grads: &mut GradientsParams,
        h: Tensor<2>,
        dp: [Vec<f32>; 3],
    ) -> Tensor<2> {
        let [n, _] = h.dims();
        let w = dp[0].len() / n;
        let mut dy = Vec::with_capacity(3 * n * w);
        for r in 0..n {
            for d in &dp {
                dy.extend_from_slice(&d[r * w..(r + 1) * w]);
            }
        }
        let dy = Tensor::<2>::from_data(TensorData::new(dy, [n, 3 * w]), &h.device());
        let dw = matmul(h.transpose(), dy.clone()); // [D, 3W]
        let db = self
            .b
            .as_ref()
            .map(|_| dy.clone().sum_dim(0).reshape([3 * w]));
        for (i, p) in self.parts.iter().enumerate() {
            grads.register(p.w_id, dw.clone().narrow(1, i * w, w));
            if let (Some(id), Some(db)) = (p.b_id, &db) {
                grads.register(id, db.clone().narrow(0, i * w, w));
            }
        }
        matmul(dy, self.w.clone().transpose())
    }
}
