//! The decoder's cross-attention sublayer as a [`ManualHook`] of the core's manual backward:
//! `y = h + drop(W_o attend(W_q norm(h), K_enc, V_enc))` per step by hand, its backward per step,
//! the encoder keys'/values' gradients accumulated, and its weight gradients from one matmul over
//! all rows at the end (as the core's own, [`super::weights`]). The dropout on the sublayer's
//! output draws burn's mask at the point of the step where autodiff's `CrossAttention::forward`
//! draws it (after the layer's attention-output mask, before its feed-forward mask; see
//! [`super::dropout`]), so one seed gives both paths the same masks.
//!
//! Size legend as in [`super`]: B rows, T steps, H heads, D d_model, Dh = D/H, S_src source length,
//! N = T·B rows.
use burn::optim::GradientsParams;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Tensor, TensorData};
use mnemo_backend::with_slice;
use mnemo_core::attention::MASKED;

use super::dropout::{dropped, keep_prob, masked};
use super::params::{LinearParams, NormParams, StepMatrix};
use super::weights::rows;
use super::{ManualHook, StepProducts};
use crate::host_cross::HostCross;
use mnemo_core::{CrossMemory, CrossSublayer};

/// One layer's cross-attention parameters and what its forward kept, step by step.
struct Layer {
    norm: NormParams,
    query: LinearParams,
    output: LinearParams,
    /// `(γ ⊙ W_q)ᵀ` and `W_oᵀ` for one step's gradient rows.
    q_w_t: StepMatrix,
    o_w_t: StepMatrix,
    /// The attention over the source, on tensors or on the host.
    attention: Attention,
    /// Per step: x̂ and 1/σ of the norm, the attention output.
    x_hat: Vec<Tensor<2>>,
    rstd: Vec<Tensor<2>>,
    o: Vec<Tensor<2>>,
    /// Keep probability of the output's dropout (None: no dropout) and its scaled mask per
    /// step.
    keep: Option<f64>,
    masks: Vec<Tensor<2>>,
    /// Per step (reverse order): gradients of the query and of the output projection's output.
    dq: Vec<Tensor<2>>,
    dout: Vec<Tensor<2>>,
}

/// A layer's attention over the source: burn's products on tensors, or the CPU kernels on a
/// host copy ([`HostCross`], with host products and sources padded at the end).
// Built once per layer per batch: the size of the tensor variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Attention {
    Tensors {
        /// Encoder keys and values `[B, H, S_src, Dh]` (plain).
        keys: Tensor<4>,
        values: Tensor<4>,
        /// True at source padding `[B, 1, 1, S_src]`: those scores are set to `MASKED`, as in
        /// `mnemo_core::attend`.
        key_mask: Tensor<4, Bool>,
        /// Per step: the query and the probabilities `[B, H, 1, ·]`.
        q: Vec<Tensor<4>>,
        a: Vec<Tensor<4>>,
        /// Gradients of the encoder keys and values, summed over steps.
        dkeys: Tensor<4>,
        dvalues: Tensor<4>,
    },
    Host(HostCross),
}

/// The cross-attention of every decoder layer; see the [module docs](self).
pub(crate) struct CrossHook {
    layers: Vec<Layer>,
    heads: usize,
}

impl CrossHook {
    /// The sublayers' dropouts act when `autodiff` (the model's parameters are on an autodiff
    /// device, i.e. training), as burn's `Dropout`.
    ///
    /// # Shapes
    /// - cross: per layer, keys and values `[B, H, S_src, Dh]` and the source padding
    ///   `[B, 1, 1, S_src]` (plain device)
    pub(crate) fn new(
        sublayers: &[CrossSublayer],
        cross: Vec<CrossMemory>,
        products: StepProducts,
        autodiff: bool,
    ) -> Self {
        let heads = sublayers[0].attention.n_heads;
        let layers = sublayers
            .iter()
            .zip(cross)
            .map(|(c, cross)| {
                let CrossMemory {
                    keys,
                    values,
                    key_mask,
                } = cross;
                let norm = NormParams::of(&c.residual.norm).for_steps(products);
                let host = (products == StepProducts::Host)
                    .then(|| HostCross::of(&keys, &values, &key_mask))
                    .flatten();
                let attention = match host {
                    Some(host) => Attention::Host(host),
                    None => Attention::Tensors {
                        dkeys: keys.zeros_like(),
                        dvalues: values.zeros_like(),
                        keys,
                        values,
                        key_mask,
                        q: Vec::new(),
                        a: Vec::new(),
                    },
                };
                let query = LinearParams::of(&c.attention.query, Some(products));
                let output = LinearParams::of(&c.attention.output, Some(products));
                Layer {
                    q_w_t: StepMatrix::from_transposed(norm.fold_rows(query.w.clone()), products),
                    o_w_t: StepMatrix::from_transposed(output.w.clone(), products),
                    norm,
                    query,
                    output,
                    keep: keep_prob(&c.attention.dropout, autodiff),
                    masks: Vec::new(),
                    attention,
                    x_hat: Vec::new(),
                    rstd: Vec::new(),
                    o: Vec::new(),
                    dq: Vec::new(),
                    dout: Vec::new(),
                }
            })
            .collect();
        Self { layers, heads }
    }

    /// Register the sublayers' weight gradients; return the encoder keys' and values'
    /// gradients per layer.
    pub(crate) fn finish(self, grads: &mut GradientsParams) -> Vec<(Tensor<4>, Tensor<4>)> {
        self.layers
            .into_iter()
            .map(|mut layer| {
                layer.dq.reverse();
                layer.dout.reverse();
                let x_hat = rows(layer.x_hat);
                let x_hat_device = x_hat.device();
                let dq = rows(layer.dq);
                layer
                    .norm
                    .register_read_by(grads, x_hat, vec![(&layer.query, dq)]);
                layer
                    .output
                    .register(grads, rows(layer.o), rows(layer.dout));
                match layer.attention {
                    Attention::Tensors { dkeys, dvalues, .. } => (dkeys, dvalues),
                    Attention::Host(host) => host.grads(&x_hat_device),
                }
            })
            .collect()
    }
}

impl ManualHook for CrossHook {
    fn forward(&mut self, l: usize, _t: usize, h: Tensor<2>) -> Tensor<2> {
        let heads = self.heads;
        let layer = &mut self.layers[l];
        let [b, d] = h.dims();
        let dh = d / heads;
        let (x_hat, rstd) = layer.norm.step_stats(h.clone());
        let q = layer.query.step(layer.norm.affine(x_hat.clone())); // [B,D]
        let o = match &mut layer.attention {
            Attention::Host(host) => {
                let device = q.device();
                let o = with_slice(q, |q| host.attend(q));
                Tensor::from_data(TensorData::new(o, [b, d]), &device)
            }
            Attention::Tensors {
                keys,
                values,
                key_mask,
                q: qs,
                a: probs,
                ..
            } => {
                let q = q.reshape([b, heads, 1, dh]); // [B,H,1,Dh]
                let s_src = keys.dims()[2];
                let scores = q
                    .clone()
                    .matmul(keys.clone().swap_dims(2, 3))
                    .mul_scalar(1.0 / (dh as f64).sqrt());
                let scores =
                    scores.mask_fill(key_mask.clone().expand([b, heads, 1, s_src]), MASKED);
                let a = softmax(scores, 3); // [B,H,1,S_src]
                let o = a.clone().matmul(values.clone()).reshape([b, d]); // [B,D]
                qs.push(q);
                probs.push(a);
                o
            }
        };
        let y = h + dropped(layer.output.step(o.clone()), layer.keep, &mut layer.masks);
        layer.x_hat.push(x_hat);
        layer.rstd.push(rstd);
        layer.o.push(o);
        y
    }

    fn backward(&mut self, l: usize, t: usize, dy: Tensor<2>) -> Tensor<2> {
        let heads = self.heads;
        let layer = &mut self.layers[l];
        let [b, d] = dy.dims();
        let dh = d / heads;
        let dout = masked(dy.clone(), &layer.masks, t); // the output projection's output
        let d_o = layer.o_w_t.apply(dout.clone()); // [B,D]
        let dq = match &mut layer.attention {
            Attention::Host(host) => {
                let device = d_o.device();
                let dq = with_slice(d_o, |d_o| host.backward(t, d_o));
                Tensor::from_data(TensorData::new(dq, [b, d]), &device)
            }
            Attention::Tensors {
                keys,
                values,
                q,
                a,
                dkeys,
                dvalues,
                ..
            } => {
                let d_o = d_o.reshape([b, heads, 1, dh]); // [B,H,1,Dh]
                let a = a[t].clone();
                let da = d_o.clone().matmul(values.clone().swap_dims(2, 3)); // [B,H,1,S_src]
                let ds = (a.clone() * (da.clone() - (da * a.clone()).sum_dim(3)))
                    .mul_scalar(1.0 / (dh as f64).sqrt());
                let dq = ds.clone().matmul(keys.clone()); // [B,H,1,Dh]
                *dkeys = dkeys.clone() + ds.swap_dims(2, 3).matmul(q[t].clone());
                *dvalues = dvalues.clone() + a.swap_dims(2, 3).matmul(d_o);
                dq.reshape([b, d])
            }
        };
        let dh_norm = layer.norm.step_backward(
            layer.q_w_t.apply(dq.clone()),
            layer.x_hat[t].clone(),
            layer.rstd[t].clone(),
        );
        layer.dq.push(dq);
        layer.dout.push(dout);
        dy + dh_norm
    }
}
