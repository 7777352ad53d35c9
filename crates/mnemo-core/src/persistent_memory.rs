//! Persistent memory: learned key/value vectors every query attends to.
//!
//! Sukhbaatar, Grave, Lample, Jégou & Joulin, "Augmenting Self-attention with Persistent Memory"
//! (2019). Each attention layer holds, per head h, N learned keys `M_k^h` and values `M_v^h`
//! that are concatenated in front of the keys and values of the positions:
//!
//! ```text
//! K'_h = [M_k^h ; K_h],   V'_h = [M_v^h ; V_h]
//! a_t  = softmax(q_t K'_hᵀ / √Dh + [0 … 0 ; q_t · p_{t−i}]) V'_h
//! ```
//!
//! The persistent slots carry no position term and no mask: every query sees all of them,
//! whatever its position (they are context-independent, like the feed-forward weights they can
//! replace: the paper's *all-attention* layer drops the feed-forward sublayer). Initialisation
//! follows the paper: keys `N(0, 1/Dh)`, values `N(0, 1/N)`.
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Bool, Device, Tensor, TensorData};

/// Configuration of [`PersistentMemory`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PersistentMemoryConfig {
    /// Number of heads H.
    pub n_heads: usize,
    /// Head size Dh.
    pub d_head: usize,
    /// Persistent slots N per head (≥ 1).
    pub slots: usize,
}

impl PersistentMemoryConfig {
    /// Build the vectors (keys `N(0, 1/Dh)`, values `N(0, 1/N)`).
    pub fn init(&self, device: &Device) -> PersistentMemory {
        assert!(self.slots >= 1, "persistent_memory: must be at least 1");
        let shape = [self.n_heads, self.slots, self.d_head];
        let normal = |var: f64| Initializer::Normal {
            mean: 0.0,
            std: var.sqrt(),
        };
        PersistentMemory {
            keys: normal(1.0 / self.d_head as f64).init(shape, device),
            values: normal(1.0 / self.slots as f64).init(shape, device),
        }
    }
}

/// N learned key/value vectors per head, attended by every query.
#[derive(Module, Debug)]
pub struct PersistentMemory {
    /// Keys. Shape `[H, N, Dh]`.
    pub keys: Param<Tensor<3>>,
    /// Values. Shape `[H, N, Dh]`.
    pub values: Param<Tensor<3>>,
}

impl PersistentMemory {
    /// Number of slots N.
    pub fn slots(&self) -> usize {
        self.keys.dims()[1]
    }

    /// Put the persistent slots in front of an attention's keys, values, position scores and
    /// mask (scores 0 and mask false on the persistent slots).
    ///
    /// # Shapes
    /// - k, v: `[B, H, Tk, Dh]` → `[B, H, N + Tk, Dh]`
    /// - extra: `[B, H, Tq, Tk]` → `[B, H, Tq, N + Tk]`
    /// - mask: `[1, 1, Tq, Tk]` → `[1, 1, Tq, N + Tk]` (true = not attendable)
    pub fn prepend(
        &self,
        k: Tensor<4>,
        v: Tensor<4>,
        extra: Tensor<4>,
        mask: Option<Tensor<4, Bool>>,
    ) -> PrependedKeys {
        let [b, h, _, dh] = k.dims();
        let [_, _, tq, _] = extra.dims();
        let n = self.slots();
        let device = k.device();
        let expand = |p: Tensor<3>| p.unsqueeze::<4>().expand([b, h, n, dh]);
        PrependedKeys {
            keys: Tensor::cat(vec![expand(self.keys.val()), k], 2),
            values: Tensor::cat(vec![expand(self.values.val()), v], 2),
            extra: Tensor::cat(vec![Tensor::zeros([b, h, tq, n], &device), extra], 3),
            mask: mask.map(|m| {
                let [_, _, tq, _] = m.dims();
                let open = TensorData::new(vec![false; tq * n], [1, 1, tq, n]);
                Tensor::cat(vec![Tensor::<4, Bool>::from_data(open, &device), m], 3)
            }),
        }
    }
}

/// An attention's keys, values, position scores and mask with the persistent slots in front.
#[derive(Debug, Clone)]
pub struct PrependedKeys {
    /// Keys `[B, H, N + Tk, Dh]`.
    pub keys: Tensor<4>,
    /// Values `[B, H, N + Tk, Dh]`.
    pub values: Tensor<4>,
    /// Position scores `[B, H, Tq, N + Tk]` (0 on the persistent slots).
    pub extra: Tensor<4>,
    /// Mask `[1, 1, Tq, N + Tk]` (false on the persistent slots).
    pub mask: Option<Tensor<4, Bool>>,
}

#[cfg(test)]
mod tests {
    use crate::attention::{CausalSelfAttention, CausalSelfAttentionConfig};
    use crate::host::{check_finite_differences, max_abs_gap, to_vec};
    use crate::kv_cache::KvCache;
    use crate::seeded::normal;
    use burn::tensor::{Device, Tensor};

    /// Width 6, 2 heads (Dh 3), span 3, `slots` persistent slots.
    fn attention(slots: usize, device: &Device) -> CausalSelfAttention {
        let mut config = CausalSelfAttentionConfig::new(6, 2, 3);
        config.persistent_memory = slots;
        crate::seeded::reinit(config.init(device), 7)
    }

    /// Row-major `[T, D]` matrix of a `[1, T, D]` tensor, as nested vectors.
    fn rows(x: Tensor<3>) -> Vec<Vec<f32>> {
        let [_, t, d] = x.dims();
        to_vec(x).chunks(d).take(t).map(|r| r.to_vec()).collect()
    }

    /// Attention with persistent slots, written out on the host: per head, query t scores the N
    /// slots without a position term and keys t-S+1..=t with `q·p_{t-i}`, softmax over both.
    fn naive(attn: &CausalSelfAttention, x: Tensor<3>) -> Vec<Vec<f32>> {
        let (h, dh, span) = (2, 3, 3);
        let q = rows(attn.query.forward(x.clone()));
        let k = rows(attn.key.forward(x.clone()));
        let v = rows(attn.value.forward(x.clone()));
        let memory = attn.persistent.as_ref().unwrap();
        let n = memory.slots();
        let pk = to_vec(memory.keys.val()); // [H,N,Dh]
        let pv = to_vec(memory.values.val());
        let table = to_vec(attn.positions().table.val()); // [S,Dh]
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let t_len = q.len();
        let mut out = vec![vec![0.0f32; h * dh]; t_len];
        for t in 0..t_len {
            for head in 0..h {
                let r = head * dh..(head + 1) * dh;
                let qt = &q[t][r.clone()];
                let mut scores = Vec::new();
                let mut values = Vec::new();
                for j in 0..n {
                    let at = (head * n + j) * dh;
                    scores.push(dot(qt, &pk[at..at + dh]) / (dh as f32).sqrt());
                    values.push(pv[at..at + dh].to_vec());
                }
                for i in t.saturating_sub(span - 1)..=t {
                    let p = &table[(t - i) * dh..(t - i + 1) * dh];
                    scores.push((dot(qt, &k[i][r.clone()]) + dot(qt, p)) / (dh as f32).sqrt());
                    values.push(v[i][r.clone()].to_vec());
                }
                let top = scores.iter().cloned().fold(f32::MIN, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - top).exp()).collect();
                let z: f32 = e.iter().sum();
                for (w, val) in e.iter().zip(&values) {
                    for c in 0..dh {
                        out[t][head * dh + c] += w / z * val[c];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn persistent_slots_are_attended_by_every_query_without_position_terms() {
        let device = mnemo_backend::test_device();
        let attn = attention(2, &device);
        let x = normal([1, 5, 6], 3, &device);
        let want = naive(&attn, x.clone());
        // Compare before the output projection: undo nothing, apply it to the reference.
        let want: Vec<f32> = want.concat();
        let want = attn.output.forward(Tensor::<3>::from_data(
            burn::tensor::TensorData::new(want, [1, 5, 6]),
            &device,
        ));
        let got = attn.forward(x.clone());
        let gap = max_abs_gap(got, want);
        assert!(gap < 1e-5, "max |Δ| = {gap}");
        // The slots matter: the same weights without them give another output.
        let mut plain = attention(2, &device);
        plain.persistent = None;
        let gap = max_abs_gap(attn.forward(x.clone()), plain.forward(x));
        assert!(gap > 1e-3, "persistent slots changed nothing");
    }

    #[test]
    fn step_by_step_equals_the_parallel_pass() {
        let device = mnemo_backend::test_device();
        let attn = attention(3, &device);
        let x = normal([2, 6, 6], 4, &device);
        let parallel = attn.forward(x.clone());
        let mut cache = KvCache::new(attn.span());
        for t in 0..6 {
            let step = attn.forward_step(x.clone().slice([0..2, t..t + 1, 0..6]), &mut cache);
            let want = parallel.clone().slice([0..2, t..t + 1, 0..6]);
            let gap = max_abs_gap(step, want);
            assert!(gap < 1e-5, "step {t}: max |Δ| = {gap}");
        }
    }

    #[test]
    fn persistent_gradients_match_finite_differences() {
        let device = mnemo_backend::test_device();
        let attn = attention(2, &device);
        let x = normal([1, 4, 6], 5, &device);
        let probe = normal([1, 4, 6], 6, &device);
        let loss = |a: &CausalSelfAttention| (a.forward(x.clone()) * probe.clone()).sum();
        let grads = loss(&attn).backward();
        let memory = attn.persistent.as_ref().unwrap();
        for (name, param) in [("keys", &memory.keys), ("values", &memory.values)] {
            let analytic = to_vec(param.grad(&grads).expect("gradient"));
            let loss_at = |values: Vec<f32>| {
                let mut moved = attention(2, &device);
                let t = Tensor::<3>::from_data(
                    burn::tensor::TensorData::new(values, [2, 2, 3]),
                    &device,
                );
                let target = moved.persistent.as_mut().unwrap();
                match name {
                    "keys" => target.keys = burn::module::Param::from_tensor(t),
                    _ => target.values = burn::module::Param::from_tensor(t),
                }
                loss(&moved).into_scalar::<f32>()
            };
            let base = to_vec(param.val());
            check_finite_differences(name, &analytic, &base, &[0, 4, 7, 11], loss_at).unwrap();
        }
    }
}
