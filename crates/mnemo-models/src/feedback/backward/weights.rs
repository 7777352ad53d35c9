//! The weight gradients of the manual backward: one matmul per weight over all `N = T·B` rows
//! (the weights do not change within a segment, so `Σ_t x_tᵀ dy_t = Xᵀ dY`), and the mixing
//! logits' gradient through the softmax.
//!
//! Size legend as in [`super`]: B rows, T steps, S span, L layers, H heads, D d_model, Dh head size,
//! N = T·B rows (time-major: row `t·B + b`).
use super::carried::Carried;
use burn::module::ParamId;
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

use super::bptt::{Batched, LayerGrads, TimeGrads};
use super::forward::LayerTape;
use super::params::{CoreParams, LayerParams, register_sum};
use crate::two_cores::on_two_cores;

/// Stack per-step `[B, X]` tensors (in time order) into `[T·B, X]` rows.
pub(super) fn rows(steps: Vec<Tensor<2>>) -> Tensor<2> {
    let [b, x] = steps[0].dims();
    let t = steps.len();
    Tensor::stack::<3>(steps, 0).reshape([t * b, x])
}

/// Time order of per-step values pushed in reverse, as rows.
fn time_order(mut v: Vec<Tensor<2>>) -> Tensor<2> {
    v.reverse();
    rows(v)
}

/// Register the gradient of every parameter of the core: in `grads` those of the lower half
/// of the layers, the memory projections and the mixing logits; the upper half's, computed on
/// the second core at the same time, in the returned gradients, which the caller adds.
///
/// # Shapes
/// - x0: `[T, B, D]` the inputs; carried: `[B, S, D]`
/// - tops, memories: per step `[B, D]`
#[allow(clippy::too_many_arguments)]
pub(super) fn register_weight_grads(
    grads: &mut GradientsParams,
    params: &CoreParams,
    mix_id: Option<ParamId>,
    heads: usize,
    x0: Tensor<3>,
    carried: Carried,
    tapes: Vec<LayerTape>,
    tops: Vec<Tensor<2>>,
    memories: Vec<Tensor<2>>,
    time: TimeGrads,
) -> GradientsParams {
    let [t_len, b, d] = x0.dims();
    let s = carried.memories.dims()[1];
    let dh = params.d_head;
    let n_rows = t_len * b;
    let n_layers = params.layers.len();
    let device = x0.device();
    let dm_all = rows(time.dm);
    // Mixing logits: dL/dw_l = Σ dm ⊙ h^l, through the softmax.
    let mut level_grads = Vec::with_capacity(n_layers + 1);
    level_grads.push(
        (dm_all.clone() * x0.reshape([n_rows, d]))
            .sum()
            .into_scalar::<f64>(),
    );
    for l in 0..n_layers {
        let h = match l + 1 < n_layers {
            true => rows(tapes[l + 1].x.clone()),
            false => rows(tops.clone()),
        };
        level_grads.push((dm_all.clone() * h).sum().into_scalar::<f64>());
    }
    // The mixing logits' gradient (softmax Jacobian); none when memories are the top layer's.
    if let Some(mix_id) = mix_id {
        let mix = &params.mix;
        let mean: f64 = mix
            .iter()
            .zip(&level_grads)
            .map(|(w, g)| *w as f64 * g)
            .sum();
        let dmix: Vec<f32> = mix
            .iter()
            .zip(&level_grads)
            .map(|(w, g)| (*w as f64 * (g - mean)) as f32)
            .collect();
        grads.register(
            mix_id,
            Tensor::<1>::from_data(TensorData::new(dmix, [n_layers + 1]), &device),
        );
    }
    // The layers' gradients: the upper half of the layers on a second core, the lower half
    // and the memory projections here (crate::two_cores); the second core's registrations
    // are returned, for the caller to add.
    let dims = LayerDims {
        n_rows,
        d,
        s,
        dh,
        heads,
    };
    let mut work: Vec<_> = params
        .layers
        .iter()
        .zip(tapes)
        .zip(time.batched.into_iter().zip(time.layers))
        .map(|((lp, tape), (bt, lg))| (lp, tape, bt, lg))
        .collect();
    let upper = work.split_off(n_layers / 2);
    let projections = (memories, carried, time.dkeys, time.dvalues);
    let (_, other) = on_two_cores(
        || {
            for (lp, tape, bt, lg) in work {
                register_layer(grads, lp, tape, bt, lg, dims);
            }
            register_projections(grads, params, projections, dims);
        },
        || {
            let mut other = GradientsParams::new();
            for (lp, tape, bt, lg) in upper {
                register_layer(&mut other, lp, tape, bt, lg, dims);
            }
            other
        },
    );
    other
}

/// Sizes the weight gradients of a segment are computed with.
#[derive(Clone, Copy)]
struct LayerDims {
    /// N = T·B rows.
    n_rows: usize,
    d: usize,
    s: usize,
    dh: usize,
    heads: usize,
}

/// Register one layer's parameter gradients (norms, query, position table, adaptive span,
/// output, FFN) from its tape, its batched quantities and its per-step gradients.
fn register_layer(
    grads: &mut GradientsParams,
    lp: &LayerParams,
    tape: LayerTape,
    bt: Batched,
    lg: LayerGrads,
    dims: LayerDims,
) {
    let LayerDims {
        n_rows,
        d,
        s,
        dh,
        heads,
    } = dims;
    let device = bt.x_hat.device();
    let x_hat = bt.x_hat.reshape([n_rows, d]);
    lp.norm1
        .register_read_by(grads, x_hat, vec![(&lp.linear.query, time_order(lg.dq))]);
    let w = lp.width;
    let mut ds = lg.ds;
    ds.reverse();
    let ds = Tensor::cat(ds, 0).reshape([n_rows * heads, w]); // [N·H,w]
    let q = rows(tape.q).reshape([n_rows * heads, dh]);
    let dwindow = ds.transpose().matmul(q); // [w,Dh], slot j = distance w-j
    // The S − w farthest distances were not read: zero gradient.
    let dwindow = match s - w {
        0 => dwindow,
        far => Tensor::cat(vec![Tensor::zeros([far, dh], &device), dwindow], 0),
    };
    // Summed over the layers that share the table (`tie_positions`).
    register_sum(grads, lp.table_id, dwindow.flip([0]));
    if let (Some(span), Some(dmask)) = (&lp.span, lg.dmask) {
        // dL/dz = Σ ∂L/∂mask · ∂mask/∂z over rows, steps and (one span per layer) heads.
        let ratios = span.slope.dims()[0];
        let dmask = dmask.sum_dim(0).reshape([heads, w]);
        let dmask = if ratios == 1 { dmask.sum_dim(0) } else { dmask };
        let dz = (dmask * span.slope.clone()).sum_dim(1).reshape([ratios]);
        grads.register(span.ratio_id, dz);
    }
    lp.linear
        .output
        .register(grads, rows(tape.o), time_order(lg.dattn));
    let df1 = time_order(lg.df1);
    let mid_hat = bt.mid_hat.reshape([n_rows, d]);
    lp.norm2
        .register_read_by(grads, mid_hat, vec![(&lp.linear.up, df1)]);
    let act = rows(tape.act); // [N,F]
    let act = match tape.ff_mask.is_empty() {
        true => act,
        false => act * rows(tape.ff_mask), // what the down projection read
    };
    lp.linear.down.register(grads, act, time_order(lg.dy));
}

/// Register the memory projections' gradients (norm, key, value). Every slot's key/value
/// came from the current projection weights: the carried memories' slots too (their memories
/// are detached, the projection is not); zero carried memories as one row
/// ([`Carried::memory_rows`]).
///
/// # Shapes
/// - memories: per step `[B, D]`; carried: `[B, S, D]`
/// - dkeys, dvalues: per projection `[B, H, S+T, Dh]`
fn register_projections(
    grads: &mut GradientsParams,
    params: &CoreParams,
    (memories, carried, dkeys, dvalues): ProjectionGrads,
    dims: LayerDims,
) {
    let d = dims.d;
    let t_len = memories.len();
    let b = carried.memories.dims()[0];
    let m_bt = rows(memories).reshape([t_len, b, d]).swap_dims(0, 1); // [B,T,D]
    let m = carried.memory_rows(m_bt); // [N,D]
    for (proj, (dkbuf, dvbuf)) in params.projs.iter().zip(dkeys.into_iter().zip(dvalues)) {
        let (dk, dv) = (carried.grad_rows(dkbuf), carried.grad_rows(dvbuf));
        let (m_hat, _) = proj.norm.stats(m.clone());
        let reads = vec![(&proj.linear.key, dk), (&proj.linear.value, dv)];
        proj.norm.register_read_by(grads, m_hat, reads);
    }
}

/// What the memory projections' gradients are computed from: the segment's memories, the
/// carried ones, and the keys' and values' gradients per projection.
type ProjectionGrads = (Vec<Tensor<2>>, Carried, Vec<Tensor<4>>, Vec<Tensor<4>>);
