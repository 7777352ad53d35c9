//! One decoding step of the [`FeedbackCore`] on host rows: what [`FeedbackCore::step`]
//! computes (pre-norm layers, attention over the memory window, feed-forward, the mix of all
//! states, the memory's key and value), with every value between the host kernels' products
//! kept in plain `Vec<f32>` rows instead of a burn tensor per operation. Decoding one row
//! multiplies a single row by every weight, so the products stream the weights and the burn
//! operations between them were a third of the step (docs/performance.md).
//!
//! Two threads run each step in lockstep (`mnemo_kernels::in_pair`): each computes its columns
//! of every product and its rows of the attention and posts them, and both do the row-wise work
//! between the products (norms, residuals, the mix) on the whole rows, so the second core works
//! through the step instead of waiting between products for its half of the next one. On one
//! thread (no helper) the same code runs alone; the results are equal bit for bit
//! (`tests/feedback_core.rs`).
//!
//! Used by [`FeedbackCore::step_unhooked`] when the weights are packed for the host kernels
//! ([`StepProducts::Host`](super::StepProducts::Host) on plain weights), every layer is
//! pre-norm and none has an adaptive span ([`HostRows::of`]); the same sums in another rounding
//! order (`tests/feedback_core.rs` checks it against the tensor step).
//!
//! Size legend: B rows, D width, H heads, Dh head size, F feed-forward width, L layers.
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use mnemo_core::{Activation, Norm};
use mnemo_kernels::{Half, Isa, PackedMatrix, gelu_in_place, in_pair};

use super::backward::params::LinearParams;
use super::backward::{StepMatrix, StepProducts};
use super::core::{FeedbackCore, HostLinears};
use super::host;
use super::host_memory::HostMemory;
use super::host_norm::HostNorm;
use super::memory::FeedbackMemory;

/// A linear map's weights packed for the host kernels.
fn packed(params: &LinearParams) -> &PackedMatrix {
    let Some(StepMatrix::Host(m)) = params.step.as_ref() else {
        unreachable!("host rows are built only over packed weights")
    };
    m
}

/// `act(x · W + b)` on host rows, each half of a pair computing its columns
/// ([`PackedMatrix::part_columns`]) and both reading the whole (one exchange).
///
/// # Shapes
/// - x: `[B, in]` row-major; output `[B, out]`
fn linear(
    half: &Half,
    map: (&LinearParams, &Option<Vec<f32>>),
    x: &[f32],
    rows: usize,
    activation: Option<Activation>,
) -> Vec<f32> {
    half.exchange(
        |mine| linear_part(half, map, x, rows, activation, mine),
        |parts| rows_of_column_parts(parts, rows),
    )
}

/// This half's columns of `act(x · W + b)` into `out`, `[B, cols]`.
fn linear_part(
    half: &Half,
    (params, bias): (&LinearParams, &Option<Vec<f32>>),
    x: &[f32],
    rows: usize,
    activation: Option<Activation>,
    out: &mut Vec<f32>,
) {
    let m = packed(params);
    let cols = m.part_columns(half.index(), half.parts());
    out.resize(rows * cols.len(), 0.0);
    m.matmul_columns(x, out, rows, cols.clone());
    if let Some(bias) = bias {
        for row in out.chunks_exact_mut(cols.len().max(1)) {
            row.iter_mut()
                .zip(&bias[cols.clone()])
                .for_each(|(y, b)| *y += b);
        }
    }
    match activation {
        Some(Activation::Gelu) => gelu_in_place(Isa::detect(), out),
        Some(Activation::Relu) => out.iter_mut().for_each(|v| *v = v.max(0.0)),
        None => {}
    }
}

/// The `[B, n]` rows whose columns are the parts' columns side by side (each part `[B, n_p]`).
fn rows_of_column_parts(parts: &[&[f32]], rows: usize) -> Vec<f32> {
    if rows == 1 {
        return parts.concat();
    }
    let widths: Vec<usize> = parts.iter().map(|p| p.len() / rows).collect();
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for r in 0..rows {
        for (part, &w) in parts.iter().zip(&widths) {
            out.extend_from_slice(&part[r * w..(r + 1) * w]);
        }
    }
    out
}

/// A linear map's bias on the host (None without one).
fn host_bias(map: &Linear) -> Option<Vec<f32>> {
    map.bias.as_ref().map(|b| host(b.val()))
}

/// `x += y`, element by element.
fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
}

/// One layer's norms, biases and activation on the host.
#[derive(Debug)]
struct LayerRows {
    norm1: HostNorm,
    norm2: HostNorm,
    /// Biases of the query, output, FFN up and FFN down maps.
    bias: [Option<Vec<f32>>; 4],
    activation: Activation,
}

/// A memory projection's norm (None: the memories are projected as they are) and its key's
/// and value's biases, on the host.
#[derive(Debug)]
struct ProjectionRows {
    norm: Option<HostNorm>,
    bias: [Option<Vec<f32>>; 2],
}

/// What a host-row step reads besides the packed products: per layer its norms and biases, per
/// memory projection its norm and biases, and the mixing weights.
#[derive(Debug)]
pub(crate) struct HostRows {
    layers: Vec<LayerRows>,
    projections: Vec<ProjectionRows>,
    /// `softmax(w)` over the L+1 states.
    mix: Vec<f32>,
}

impl HostRows {
    /// Whether every layer of `core` allows a step on host rows: pre-norm, no adaptive span.
    pub(crate) fn apply(core: &FeedbackCore) -> bool {
        core.layers.iter().all(|l| {
            l.attn_residual.is_pre() && l.ff_residual.is_pre() && l.adaptive_span.is_none()
        })
    }

    /// The host rows of `core`, or None where a step needs the tensor path: a layer that is not
    /// pre-norm or has an adaptive span.
    pub(crate) fn of(core: &FeedbackCore) -> Option<Self> {
        if !Self::apply(core) {
            return None;
        }
        let layers = core
            .layers
            .iter()
            .map(|l| LayerRows {
                norm1: HostNorm::of(&l.attn_residual.norm),
                norm2: HostNorm::of(&l.ff_residual.norm),
                bias: [
                    host_bias(&l.query),
                    host_bias(&l.output),
                    host_bias(&l.ff.up),
                    host_bias(&l.ff.down),
                ],
                activation: l.ff.activation,
            })
            .collect();
        let projections = core
            .memory_projections
            .iter()
            .enumerate()
            .map(|(p, proj)| {
                let norm = core.memory_norm(p).map(HostNorm::of);
                ProjectionRows {
                    norm,
                    bias: [host_bias(&proj.key), host_bias(&proj.value)],
                }
            })
            .collect();
        Some(Self {
            layers,
            projections,
            mix: host(core.mix_weights()),
        })
    }
}

/// A map of the top state computed inside the host-row step: an optional norm, then a linear
/// map (a language model's final norm and head).
#[derive(Debug)]
pub(crate) struct Readout {
    norm: Option<HostNorm>,
    map: LinearParams,
    bias: Option<Vec<f32>>,
}

impl Readout {
    /// `map(norm(h))`, the map packed for the host kernels.
    pub(crate) fn of(norm: Option<&Norm>, map: &Linear) -> Self {
        Self {
            norm: norm.map(HostNorm::of),
            map: LinearParams::of(map, Some(StepProducts::Host)),
            bias: host_bias(map),
        }
    }
}

/// One step on host rows (see the [module docs](self)), computed by a pair of threads in
/// lockstep ([`in_pair`]: each computes its columns of every product and its rows of the
/// attention, both do the row-wise work between); the memory gets the step's memory vector and
/// keys and values as [`FeedbackMemory::push`] writes them.
///
/// # Shapes
/// - x: `[B, 1, D]`
/// - output: the top state `[B, 1, D]`, and with a [`Readout`] its map `[B, 1, V]`
pub(crate) fn step(
    core: &FeedbackCore,
    linears: &HostLinears,
    rows: &HostRows,
    x: Tensor<3>,
    memory: &mut FeedbackMemory,
) -> (Tensor<3>, Option<Tensor<3>>) {
    let [b, _, d] = x.dims();
    let device = x.device();
    memory.sync_host();
    let x = host(x);
    let reads: Vec<usize> = (0..rows.layers.len())
        .map(|l| core.projection_of(l))
        .collect();
    let windows = memory.host().expect("synced above");
    let (h, mixed, projected, read) = in_pair(|half| {
        let part = StepPart {
            half,
            linears,
            rows,
            windows,
            reads: &reads,
            b,
        };
        part.run(&x)
    });
    let tensor4 = |v: &[f32], heads: usize| {
        let dh = v.len() / (b * heads);
        Tensor::<4>::from_data(TensorData::new(v.to_vec(), [b, heads, 1, dh]), &device)
    };
    let projected_tensors = projected
        .iter()
        .zip(&core.memory_projections)
        .map(|((k, v), p)| (tensor4(k, p.n_heads), tensor4(v, p.n_heads)))
        .collect();
    memory.push_rows(
        tensor3(mixed, [b, 1, d], &device),
        projected_tensors,
        &projected,
    );
    let read = read.map(|r| {
        let v = r.len() / b;
        tensor3(r, [b, 1, v], &device)
    });
    (tensor3(h, [b, 1, d], &device), read)
}

/// What one half of a paired step reads.
struct StepPart<'a, 'h> {
    half: &'a Half<'h>,
    linears: &'a HostLinears,
    rows: &'a HostRows,
    windows: &'a HostMemory,
    /// Per layer, the memory projection (window) it reads.
    reads: &'a [usize],
    /// Rows B.
    b: usize,
}

/// The top state, the memory vector, per projection its key and value rows of a step, and the
/// readout of the top state (if any).
type StepRows = (
    Vec<f32>,
    Vec<f32>,
    Vec<(Vec<f32>, Vec<f32>)>,
    Option<Vec<f32>>,
);

impl StepPart<'_, '_> {
    /// The whole step as this half sees it (every half returns the same rows).
    ///
    /// # Shapes
    /// - x: `[B, D]`
    fn run(&self, x: &[f32]) -> StepRows {
        let (half, b, rows) = (self.half, self.b, self.rows);
        let mut h = x.to_vec();
        let mut mixed: Vec<f32> = h.iter().map(|v| v * rows.mix[0]).collect();
        for (l, (lr, ll)) in rows.layers.iter().zip(&self.linears.layers).enumerate() {
            let o = self.attend(l, (&ll.query, &lr.bias[0]), &lr.norm1.forward(&h));
            let a = linear(half, (&ll.output, &lr.bias[1]), &o, b, None);
            add(&mut h, &a);
            let act = Some(lr.activation);
            let up = linear(half, (&ll.up, &lr.bias[2]), &lr.norm2.forward(&h), b, act);
            add(&mut h, &linear(half, (&ll.down, &lr.bias[3]), &up, b, None));
            let w = rows.mix[l + 1];
            mixed.iter_mut().zip(&h).for_each(|(m, v)| *m += w * v);
        }
        let projected = rows
            .projections
            .iter()
            .zip(&self.linears.projections)
            .map(|(pr, pl)| {
                let n = pr.norm.as_ref().map(|n| n.forward(&mixed));
                let n = n.as_deref().unwrap_or(&mixed);
                (
                    linear(half, (&pl.key, &pr.bias[0]), n, b, None),
                    linear(half, (&pl.value, &pr.bias[1]), n, b, None),
                )
            })
            .collect();
        let read = self.linears.readout.as_ref().map(|r| {
            let n = r.norm.as_ref().map(|n| n.forward(&h));
            linear(half, (&r.map, &r.bias), n.as_deref().unwrap_or(&h), b, None)
        });
        (h, mixed, projected, read)
    }

    /// Layer `l`'s attention output `[B, D]` for the queries `x · W + b` (`x` `[B, D]`): each
    /// half attends its share of the window rows `B·H`, both read the whole. When this half's
    /// query columns are the queries of its window rows (one row B, heads not cut by the
    /// columns' split) it attends them as it computed them, without exchanging the queries.
    fn attend(&self, l: usize, query: (&LinearParams, &Option<Vec<f32>>), x: &[f32]) -> Vec<f32> {
        let (half, b) = (self.half, self.b);
        let i = self.windows.rows();
        let dh = b * packed(query.0).n() / i;
        let mine = half.share(i, 1);
        let mine_q = mine.start * dh..mine.end * dh;
        let (p, pos) = (self.reads[l], &self.linears.positions[l]);
        let cols = packed(query.0).part_columns(half.index(), half.parts());
        let q_mine = match b == 1 && cols == mine_q {
            true => {
                let mut q = Vec::new();
                linear_part(half, query, x, b, None, &mut q);
                q
            }
            false => linear(half, query, x, b, None)[mine_q].to_vec(),
        };
        half.exchange(
            |out| out.extend(self.windows.attend_rows(p, pos, &q_mine, mine.clone())),
            |parts| parts.concat(),
        )
    }
}

fn tensor3(values: Vec<f32>, dims: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values, dims), device)
}
