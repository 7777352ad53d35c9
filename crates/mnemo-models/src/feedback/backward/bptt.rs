//! Backpropagation through time of the manual backward: the activation gradients only, step by
//! step in reverse; the weight gradients are left to [`super::weights`].
//!
//! Window gradients: step `t` reads window slots `t .. t+S` of the key/value buffer and writes
//! slot `S+t`. Going backward, the gradient of slot `S+t` is complete once steps `t+1 ..` are
//! done; each step adds its contribution to its S slots with one matmul over all layers that
//! share the window (`dK[t..t+S] += dSᵀ Q`, `dV[t..t+S] += Aᵀ dO`), in place (host windows:
//! one pass every few steps, [`super::host_window`]).
//!
//! Size legend as in [`super`]: B rows, T steps, S span, L layers, H heads, D d_model, Dh head size,
//! F FFN width.
use burn::tensor::Tensor;
use mnemo_core::adaptive_span::RENORM_EPS;

use super::ManualHook;
use super::StepProducts;
use super::activation::activation_grad;
use super::dropout::masked;
use super::forward::Recorded;
use super::params::{CoreParams, StepMatrix};

/// Per-layer gradients stored by the backward, one entry per step (reversed order).
#[derive(Default)]
pub(super) struct LayerGrads {
    /// Gradient of the layer output (= of the FFN output) `[B, D]`.
    pub(super) dy: Vec<Tensor<2>>,
    /// Gradient of the FFN pre-activation `[B, F]`.
    pub(super) df1: Vec<Tensor<2>>,
    /// Gradient of the output projection's output (the attention sublayer's output gradient
    /// through the dropout mask, if any) `[B, D]`.
    pub(super) dattn: Vec<Tensor<2>>,
    /// Gradient of the query `[B, D]`.
    pub(super) dq: Vec<Tensor<2>>,
    /// Gradient of the (scaled) scores `[B, H, 1, w]`.
    pub(super) ds: Vec<Tensor<4>>,
    /// With an adaptive span, the gradient of its mask summed over the steps (not yet over
    /// the rows) `[B, H, 1, w]`.
    pub(super) dmask: Option<Tensor<4>>,
}

/// Per layer, the quantities of every step computed in one batched pass after the forward.
pub(super) struct Batched {
    pub(super) x_hat: Tensor<3>,
    pub(super) x_rstd: Tensor<3>,
    pub(super) mid_hat: Tensor<3>,
    pub(super) mid_rstd: Tensor<3>,
    /// The feed-forward activation's derivative at its input `[T, B, F]`, computed here in
    /// one pass from the pre-activations (None: the forward kept it per step, host GELU).
    pub(super) act_grad: Option<Tensor<3>>,
    q_w_t: StepMatrix,
    o_w_t: StepMatrix,
    up_w_t: StepMatrix,
    down_w_t: StepMatrix,
}

/// What the backward through time returns.
pub(super) struct TimeGrads {
    pub(super) layers: Vec<LayerGrads>,
    pub(super) batched: Vec<Batched>,
    /// Gradient of each step's memory `[B, D]`, time order.
    pub(super) dm: Vec<Tensor<2>>,
    /// Gradient of each step's input `[B, D]`, time order.
    pub(super) dx: Vec<Tensor<2>>,
    /// Key and value window gradients per projection `[B, H, S+T, Dh]`.
    pub(super) dkeys: Vec<Tensor<4>>,
    pub(super) dvalues: Vec<Tensor<4>>,
}

/// Norm statistics, activation derivatives and transposed step matrices of every layer.
fn batched(params: &CoreParams, rec: &Recorded, products: StepProducts) -> Vec<Batched> {
    params
        .layers
        .iter()
        .zip(&rec.tapes)
        .map(|(lp, tape)| {
            let (x_hat, x_rstd) = lp.norm1.stats(Tensor::stack::<3>(tape.x.clone(), 0));
            let (mid_hat, mid_rstd) = lp.norm2.stats(Tensor::stack::<3>(tape.mid.clone(), 0));
            // Computed here in one pass unless the forward kept it per step (host GELU).
            let act_grad = tape.act_grad.is_empty().then(|| {
                activation_grad(params.activation, Tensor::stack::<3>(tape.f1.clone(), 0))
            }); // [T,B,F]
            Batched {
                x_hat,
                x_rstd,
                mid_hat,
                mid_rstd,
                act_grad,
                q_w_t: StepMatrix::from_transposed(
                    lp.norm1.fold_rows(lp.linear.query.w.clone()),
                    products,
                ),
                o_w_t: StepMatrix::from_transposed(lp.linear.output.w.clone(), products),
                up_w_t: StepMatrix::from_transposed(
                    lp.norm2.fold_rows(lp.linear.up.w.clone()),
                    products,
                ),
                down_w_t: StepMatrix::from_transposed(lp.linear.down.w.clone(), products),
            }
        })
        .collect()
}

/// Step `t` of a time-major `[T, rows, width]` tensor.
pub(super) fn step_of(x: &Tensor<3>, t: usize) -> Tensor<2> {
    let [_, rows, width] = x.dims();
    x.clone().narrow(0, t, 1).reshape([rows, width])
}

/// `x` `[B, H, 1, w]` with zeros in front of its oldest slot, `width` slots wide.
fn pad_oldest(x: Tensor<4>, width: usize) -> Tensor<4> {
    let [b, h, _, w] = x.dims();
    match width - w {
        0 => x,
        pad => Tensor::cat(vec![Tensor::zeros([b, h, 1, pad], &x.device()), x], 3),
    }
}

/// Back-propagate `dtop` (`[T, B, D]`, time-major) through every step in reverse.
pub(super) fn backward_through_time(
    params: &CoreParams,
    products: StepProducts,
    heads: usize,
    rec: &mut Recorded,
    dtop: Tensor<3>,
    hook: &mut dyn ManualHook,
) -> TimeGrads {
    let [t_len, b, _] = dtop.dims();
    let dh = params.d_head;
    let s = rec.windows.memory.span();
    let scale = 1.0 / (dh as f64).sqrt();
    let device = dtop.device();
    let (layers, projs, mix) = (&params.layers, &params.projs, &params.mix);
    let n_layers = layers.len();
    let m_all = Tensor::stack::<3>(rec.memories.clone(), 0); // [T,B,D]
    let m_stats: Vec<(Tensor<3>, Tensor<3>)> =
        projs.iter().map(|p| p.norm.stats(m_all.clone())).collect();
    let batched = batched(params, rec, products);
    let proj_w_t: Vec<(StepMatrix, StepMatrix)> = projs
        .iter()
        .map(|p| {
            (
                StepMatrix::from_transposed(p.norm.fold_rows(p.linear.key.w.clone()), products),
                StepMatrix::from_transposed(p.norm.fold_rows(p.linear.value.w.clone()), products),
            )
        })
        .collect();
    let (kbufs, vbufs) = rec.windows.memory.buffers();
    let host = &mut rec.windows.host;
    // Backend windows' gradients (host windows keep theirs until `into_grads`).
    let zeros = |bufs: &[Tensor<4>]| match host {
        Some(_) => Vec::new(),
        None => bufs.iter().map(Tensor::zeros_like).collect(),
    };
    let (mut dkbufs, mut dvbufs) = (zeros(kbufs), zeros(vbufs));
    let mut lgrads: Vec<LayerGrads> = (0..n_layers).map(|_| LayerGrads::default()).collect();
    let mut dms = Vec::with_capacity(t_len);
    let mut dx0s = Vec::with_capacity(t_len);
    for t in (0..t_len).rev() {
        // Gradient of this step's memory, from everything that read its key and value.
        let mut dm: Option<Tensor<2>> = None;
        for (p, proj) in projs.iter().enumerate() {
            let dxhat = match host {
                Some(hw) => {
                    let (dk, dv) = hw.slot_grads(p, t);
                    proj_w_t[p].0.apply_host(dk, b, &device)
                        + proj_w_t[p].1.apply_host(dv, b, &device)
                }
                None => {
                    let slot = |buf: &Tensor<4>| {
                        buf.clone()
                            .slice_dim(2, s + t..s + t + 1)
                            .reshape([b, heads * dh])
                    };
                    proj_w_t[p].0.apply(slot(&dkbufs[p])) + proj_w_t[p].1.apply(slot(&dvbufs[p]))
                }
            };
            let g = proj.norm.step_backward(
                dxhat,
                step_of(&m_stats[p].0, t),
                step_of(&m_stats[p].1, t),
            );
            dm = Some(match dm {
                Some(acc) => acc + g,
                None => g,
            });
        }
        let dm = dm.expect("at least one projection");
        let mut dstate = step_of(&dtop, t) + dm.clone().mul_scalar(mix[n_layers]);
        let mut ds_step: Vec<Vec<Tensor<4>>> = vec![Vec::new(); projs.len()];
        let mut q_step: Vec<Vec<Tensor<4>>> = vec![Vec::new(); projs.len()];
        let mut a_step: Vec<Vec<Tensor<4>>> = vec![Vec::new(); projs.len()];
        let mut do_step: Vec<Vec<Tensor<4>>> = vec![Vec::new(); projs.len()];
        for l in (0..n_layers).rev() {
            let (lp, bt, tape, lg) = (&layers[l], &batched[l], &rec.tapes[l], &mut lgrads[l]);
            let dy = dstate;
            let dact = masked(bt.down_w_t.apply(dy.clone()), &tape.ff_mask, t);
            let act_grad = match &bt.act_grad {
                Some(all) => step_of(all, t),
                None => tape.act_grad[t].clone(),
            };
            let df1 = dact * act_grad; // [B,F]
            let dff_in = dy.clone()
                + lp.norm2.step_backward(
                    bt.up_w_t.apply(df1.clone()),
                    step_of(&bt.mid_hat, t),
                    step_of(&bt.mid_rstd, t),
                );
            let dmid = hook.backward(l, t, dff_in);
            let dattn = masked(dmid.clone(), &tape.attn_mask, t);
            let d_o = bt.o_w_t.apply(dattn.clone());
            let (dq, ds) = match host {
                Some(hw) => hw.backward(lp.proj, l, t, &tape.host[t], d_o),
                None => {
                    // The window gradients of a step are added over the newest slots any layer
                    // of the projection reads.
                    let (w, wp) = (lp.width, params.reach[lp.proj]);
                    let d_o = d_o.reshape([b, heads, 1, dh]);
                    let newest = t + s - w..t + s; // the w slots the layer read
                    let k_win = kbufs[lp.proj].clone().slice_dim(2, newest.clone()); // [B,H,w,Dh]
                    let v_win = vbufs[lp.proj].clone().slice_dim(2, newest);
                    let a = tape.a[t].clone(); // [B,H,1,w]
                    let da = d_o.clone().matmul(v_win.swap_dims(2, 3)); // [B,H,1,w]
                    // The softmax p and the gradient of its output.
                    let (p, dp) = match &lp.span {
                        None => (a.clone(), da),
                        Some(span) => {
                            // a = p·m / Z, Z = Σ p·m + ε: back to the softmax p and the mask.
                            let p = tape.p[t].clone();
                            let z = (p.clone() * span.mask.clone())
                                .sum_dim(3)
                                .add_scalar(RENORM_EPS);
                            let du = (da.clone() - (da * a.clone()).sum_dim(3)) / z;
                            let dmask = du.clone() * p.clone();
                            lg.dmask = Some(match lg.dmask.take() {
                                Some(acc) => acc + dmask,
                                None => dmask,
                            });
                            (p, du * span.mask.clone())
                        }
                    };
                    let ds = (p.clone() * (dp.clone() - (dp * p).sum_dim(3))).mul_scalar(scale);
                    let dq = (ds.clone().matmul(k_win) + ds.clone().matmul(lp.pos.clone()))
                        .reshape([b, heads * dh]);
                    // Padded (oldest slots zero) to the projection's widest window.
                    ds_step[lp.proj].push(pad_oldest(ds.clone(), wp));
                    q_step[lp.proj].push(tape.q[t].clone().reshape([b, heads, 1, dh]));
                    a_step[lp.proj].push(pad_oldest(a, wp));
                    do_step[lp.proj].push(d_o);
                    (dq, ds)
                }
            };
            let dx = dmid.clone()
                + lp.norm1.step_backward(
                    bt.q_w_t.apply(dq.clone()),
                    step_of(&bt.x_hat, t),
                    step_of(&bt.x_rstd, t),
                );
            lg.dy.push(dy);
            lg.df1.push(df1);
            lg.dattn.push(dattn);
            lg.dq.push(dq);
            lg.ds.push(ds);
            dstate = dx + dm.clone().mul_scalar(mix[l]);
        }
        // Window gradients of the S slots this step read, one matmul per window (host
        // windows: one in-place pass per window every few steps).
        if let Some(hw) = host.as_mut() {
            hw.end_step(t);
        }
        for p in (0..projs.len()).filter(|_| host.is_none()) {
            let window = [0..b, 0..heads, t + s - params.reach[p]..t + s, 0..dh];
            let ds = Tensor::cat(std::mem::take(&mut ds_step[p]), 2); // [B,H,Lp,reach]
            let q = Tensor::cat(std::mem::take(&mut q_step[p]), 2); // [B,H,Lp,Dh]
            let dk = ds.swap_dims(2, 3).matmul(q); // [B,H,reach,Dh]
            let a = Tensor::cat(std::mem::take(&mut a_step[p]), 2);
            let d_o = Tensor::cat(std::mem::take(&mut do_step[p]), 2);
            let dv = a.swap_dims(2, 3).matmul(d_o);
            let old = dkbufs[p].clone().slice(window.clone());
            dkbufs[p].inplace(|buf| buf.slice_assign(window.clone(), old + dk));
            let old = dvbufs[p].clone().slice(window.clone());
            dvbufs[p].inplace(|buf| buf.slice_assign(window.clone(), old + dv));
        }
        dms.push(dm);
        dx0s.push(dstate);
    }
    if let Some(hw) = host.take() {
        (dkbufs, dvbufs) = hw.into_grads(&device);
    }
    dms.reverse();
    dx0s.reverse();
    TimeGrads {
        layers: lgrads,
        batched,
        dm: dms,
        dx: dx0s,
        dkeys: dkbufs,
        dvalues: dvbufs,
    }
}
