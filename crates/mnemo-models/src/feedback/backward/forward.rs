//! The recorded forward of the manual backward: the core's step (see [`crate::feedback::core`])
//! op by op on the plain device, keeping per step only what the backward needs.
//!
//! Size legend as in [`super`]: B rows, T steps, S span, L layers, H heads, D d_model, Dh head size,
//! F FFN width.
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use mnemo_core::adaptive_span::apply_mask;

use super::ManualHook;
use super::StepProducts;
use super::activation::activate_on_host;
use super::carried::Carried;
use super::dropout::dropped;
use super::host_window::{HostAttention, HostWindows};
use super::params::CoreParams;
use crate::feedback::FeedbackMemory;
use crate::feedback::memory::project_newest;

/// Per-layer values stored by the forward, one entry per step.
#[derive(Default)]
pub(super) struct LayerTape {
    /// Layer input `[B, D]`.
    pub(super) x: Vec<Tensor<2>>,
    /// Query (unscaled) `[B, D]`.
    pub(super) q: Vec<Tensor<2>>,
    /// Attention probabilities `[B, H, 1, w]` (backend windows; masked and renormalised
    /// with an adaptive span).
    pub(super) a: Vec<Tensor<4>>,
    /// With an adaptive span, the softmax before the mask `[B, H, 1, w]`.
    pub(super) p: Vec<Tensor<4>>,
    /// Query and probabilities on the host (host windows).
    pub(super) host: Vec<HostAttention>,
    /// Attention output before the output projection `[B, D]`.
    pub(super) o: Vec<Tensor<2>>,
    /// Input of the feed-forward sublayer (after the attention sublayer and the hook) `[B, D]`.
    pub(super) mid: Vec<Tensor<2>>,
    /// FFN pre-activation `[B, F]` (only where the backward computes the activation's
    /// derivative, backend products).
    pub(super) f1: Vec<Tensor<2>>,
    /// FFN activation before dropout `[B, F]`.
    pub(super) act: Vec<Tensor<2>>,
    /// The activation's derivative at the pre-activation `[B, F]` (host products: kept from
    /// the host kernel's one pass).
    pub(super) act_grad: Vec<Tensor<2>>,
    /// Scaled dropout masks of the attention output `[B, D]` (empty without dropout).
    pub(super) attn_mask: Vec<Tensor<2>>,
    /// Scaled dropout masks of the FFN hidden activations `[B, F]` (empty without dropout).
    pub(super) ff_mask: Vec<Tensor<2>>,
}

impl LayerTape {
    /// Forget every stored value (a forward without a backward keeps nothing).
    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// The key/value windows of every projection: the segment's [`FeedbackMemory`] (S carried
/// slots, then one per step), or its host copies.
pub(super) struct Windows {
    /// The memory; with host windows, only its carried slots are filled.
    pub(super) memory: FeedbackMemory,
    /// The host copies ([`StepProducts::Host`]).
    pub(super) host: Option<HostWindows>,
}

/// What the recorded forward of a segment leaves for the backward.
pub(super) struct Recorded {
    pub(super) tapes: Vec<LayerTape>,
    /// Top state per step `[B, D]`.
    pub(super) tops: Vec<Tensor<2>>,
    /// Memory per step `[B, D]`.
    pub(super) memories: Vec<Tensor<2>>,
    pub(super) windows: Windows,
}

/// Run the segment's steps; with `keep` false (inference: no backward follows) the layer
/// tapes stay empty and the host windows get no gradient buffers.
///
/// # Shapes
/// - x0: `[T, B, D]` (time-major inputs)
/// - carried: `[B, S, D]` memories
pub(super) fn record(
    params: &CoreParams,
    products: StepProducts,
    heads: usize,
    x0: &Tensor<3>,
    carried: &Carried,
    hook: &mut dyn ManualHook,
    keep: bool,
) -> Recorded {
    let [t_len, b, d] = x0.dims();
    let s = carried.memories.dims()[1];
    let dh = params.d_head;
    let scale = 1.0 / (dh as f64).sqrt();
    let (layers, projs, mix) = (&params.layers, &params.projs, &params.mix);
    let split = |x: Tensor<3>| {
        let n = x.dims()[1];
        x.reshape([b, n, heads, dh]).swap_dims(1, 2) // [B,H,n,Dh]
    };
    let projected = projs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // Carried memories no reading layer reaches are not projected (adaptive spans).
            project_newest(&carried.memories, params.reach[i], |m| {
                let (k, v) = carried.project(m, |m| {
                    let n = p.norm.forward(m);
                    (p.linear.key.forward(n.clone()), p.linear.value.forward(n))
                });
                (split(k), split(v))
            })
        })
        .collect();
    let mut memory = FeedbackMemory::new(carried.memories.clone(), projected, t_len); // [B,H,S+T,Dh] buffers
    // Host windows attend over all S slots without a mask: layers with adaptive spans read
    // backend windows (the per-step products stay on the host).
    let host_windows =
        products == StepProducts::Host && params.layers.iter().all(|lp| lp.span.is_none());
    let mut host = host_windows.then(|| {
        let pos = layers
            .iter()
            .map(|lp| lp.pos.clone().reshape([s, dh]))
            .collect();
        HostWindows::new(&memory, pos, scale as f32, keep, carried.zero)
    });
    let mut tapes: Vec<LayerTape> = layers.iter().map(|_| LayerTape::default()).collect();
    let mut tops = Vec::with_capacity(t_len);
    let mut memories = Vec::with_capacity(t_len);
    for t in 0..t_len {
        let x = x0.clone().narrow(0, t, 1).reshape([b, d]);
        let mut mixed = x.clone().mul_scalar(mix[0]);
        let mut h = x;
        for (l, (lp, tape)) in layers.iter().zip(tapes.iter_mut()).enumerate() {
            let q = lp.linear.query.step(lp.norm1.step(h.clone())); // [B,D]
            let o = match &host {
                Some(hw) => {
                    let (o, saved) = hw.attend(lp.proj, l, t, q.clone());
                    tape.host.push(saved);
                    o
                }
                None => {
                    let w = lp.width;
                    let window = memory.view(lp.proj); // slots t..t+S
                    let newest = |x: Option<Tensor<4>>| x.expect("stored").narrow(2, s - w, w);
                    let (k_win, v_win) = (newest(window.keys), newest(window.values)); // [B,H,w,Dh]
                    let q4 = q.clone().reshape([b, heads, 1, dh]);
                    let scores = (q4.clone().matmul(k_win.swap_dims(2, 3))
                        + q4.matmul(lp.pos_t.clone()))
                    .mul_scalar(scale); // [B,H,1,w]
                    let a = match &lp.span {
                        Some(span) => {
                            let p = softmax(scores, 3);
                            tape.p.push(p.clone());
                            apply_mask(p, span.mask.clone())
                        }
                        None => softmax(scores, 3),
                    };
                    let o = a.clone().matmul(v_win).reshape([b, heads * dh]); // [B,H·Dh]
                    tape.a.push(a);
                    o
                }
            };
            // Masks drawn in the order of the autodiff step: attention output, then FFN hidden.
            let attn = dropped(
                lp.linear.output.step(o.clone()),
                lp.attn_keep,
                &mut tape.attn_mask,
            );
            let mid = hook.forward(l, t, h.clone() + attn);
            let f1 = lp.linear.up.step(lp.norm2.step(mid.clone())); // [B,F]
            let act = match products {
                StepProducts::Host => {
                    let (act, act_grad) = activate_on_host(params.activation, f1);
                    tape.act_grad.push(act_grad);
                    act
                }
                StepProducts::Backend => {
                    tape.f1.push(f1.clone());
                    params.activation.forward(f1)
                }
            };
            tape.act.push(act.clone());
            let act = dropped(act, lp.ff_keep, &mut tape.ff_mask);
            let out = mid.clone() + lp.linear.down.step(act);
            tape.x.push(h);
            tape.q.push(q);
            tape.o.push(o);
            tape.mid.push(mid);
            if !keep {
                tape.clear();
            }
            mixed = mixed + out.clone().mul_scalar(mix[l + 1]);
            h = out;
        }
        let mut projected = Vec::with_capacity(projs.len());
        for (p, proj) in projs.iter().enumerate() {
            let n = proj.norm.step(mixed.clone());
            let (k, v) = (proj.linear.key.step(n.clone()), proj.linear.value.step(n));
            match &mut host {
                Some(hw) => hw.write(p, t, k, v),
                None => {
                    projected.push((k.reshape([b, heads, 1, dh]), v.reshape([b, heads, 1, dh])))
                }
            }
        }
        if host.is_none() {
            memory.push(mixed.clone().reshape([b, 1, d]), projected); // writes slot S+t
        }
        tops.push(h);
        memories.push(mixed);
    }
    Recorded {
        tapes,
        tops,
        memories,
        windows: Windows { memory, host },
    }
}
