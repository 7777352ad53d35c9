//! One decoding step of the [`FeedbackCore`] on host rows: what [`FeedbackCore::step`]
//! computes (pre-norm layers, attention over the memory window, feed-forward, the mix of all
//! states, the memory's key and value), with every value between the host kernels' products
//! kept in plain `Vec<f32>` rows instead of a burn tensor per operation. Decoding one row
//! multiplies a single row by every weight, so the products stream the weights and the burn
//! operations between them were a third of the step (docs/performance.md).
//!
//! Used by [`FeedbackCore::step_unhooked`] when the weights are packed for the host kernels
//! ([`StepProducts::Host`](super::StepProducts::Host) on plain weights), every layer is
//! pre-norm and none has an adaptive span ([`HostRows::of`]); the same sums in another rounding
//! order (`tests/feedback_core.rs` checks it against the tensor step).
//!
//! Size legend: B rows, D width, H heads, Dh head size, F feed-forward width, L layers.
use burn::tensor::{Device, Tensor, TensorData};
use mnemo_core::{Activation, Norm};
use mnemo_kernels::{Isa, gelu};

use super::backward::StepMatrix;
use super::backward::params::{LinearParams, NormParams, host_rows};
use super::core::{FeedbackCore, HostLinears};
use super::host;
use super::memory::FeedbackMemory;

/// A norm's parameters on the host.
#[derive(Debug)]
struct HostNorm {
    /// LayerNorm (centred) or RMSNorm.
    layer: bool,
    gamma: Vec<f32>,
    beta: Option<Vec<f32>>,
    eps: f32,
}

impl HostNorm {
    fn of(norm: &Norm) -> Self {
        let p = NormParams::of(norm);
        Self {
            layer: p.layer,
            gamma: host(p.gamma),
            beta: p.beta.map(host),
            eps: p.eps as f32,
        }
    }

    /// The norm of every row of `x` (`[B, D]` row-major).
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let d = self.gamma.len();
        let mut y = vec![0.0f32; x.len()];
        for (row, out) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            let mean = match self.layer {
                true => row.iter().sum::<f32>() / d as f32,
                false => 0.0,
            };
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let rstd = 1.0 / (var + self.eps).sqrt();
            for (i, (o, v)) in out.iter_mut().zip(row).enumerate() {
                *o = (v - mean) * rstd * self.gamma[i] + self.beta.as_ref().map_or(0.0, |b| b[i]);
            }
        }
        y
    }
}

/// `x · W + b` on host rows with a linear map's packed weights.
///
/// # Shapes
/// - x: `[B, in]` row-major; output `[B, out]`
fn linear(params: &LinearParams, bias: &Option<Vec<f32>>, x: &[f32], rows: usize) -> Vec<f32> {
    let Some(StepMatrix::Host(m)) = params.step.as_ref() else {
        unreachable!("host rows are built only over packed weights")
    };
    host_rows(m, x, rows, bias.as_deref())
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
    /// The host rows of `core`, or None where a step needs the tensor path: a layer that is not
    /// pre-norm or has an adaptive span.
    pub(crate) fn of(core: &FeedbackCore) -> Option<Self> {
        let plain = core.layers.iter().all(|l| {
            l.attn_residual.is_pre() && l.ff_residual.is_pre() && l.adaptive_span.is_none()
        });
        if !plain {
            return None;
        }
        let bias = |l: &burn::nn::Linear| l.bias.as_ref().map(|b| host(b.val()));
        let layers = core
            .layers
            .iter()
            .map(|l| LayerRows {
                norm1: HostNorm::of(&l.attn_residual.norm),
                norm2: HostNorm::of(&l.ff_residual.norm),
                bias: [
                    bias(&l.query),
                    bias(&l.output),
                    bias(&l.ff.up),
                    bias(&l.ff.down),
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
                    bias: [bias(&proj.key), bias(&proj.value)],
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

/// One step on host rows (see the [module docs](self)); the memory gets the step's memory
/// vector and keys and values as [`FeedbackMemory::push`] writes them.
///
/// # Shapes
/// - x: `[B, 1, D]`
/// - output: the top state `[B, 1, D]`
pub(crate) fn step(
    core: &FeedbackCore,
    linears: &HostLinears,
    rows: &HostRows,
    x: Tensor<3>,
    memory: &mut FeedbackMemory,
) -> Tensor<3> {
    let [b, _, d] = x.dims();
    let device = x.device();
    memory.sync_host();
    let mut h = host(x);
    let mut mixed: Vec<f32> = h.iter().map(|v| v * rows.mix[0]).collect();
    {
        let windows = memory.host().expect("synced above");
        for (l, (lr, ll)) in rows.layers.iter().zip(&linears.layers).enumerate() {
            let q = linear(&ll.query, &lr.bias[0], &lr.norm1.forward(&h), b);
            let o = windows.attend(core.projection_of(l), &linears.positions[l], &q);
            add(&mut h, &linear(&ll.output, &lr.bias[1], &o, b));
            let mut up = linear(&ll.up, &lr.bias[2], &lr.norm2.forward(&h), b);
            match lr.activation {
                Activation::Gelu => {
                    let pre = up.clone();
                    gelu(Isa::detect(), &pre, &mut up);
                }
                Activation::Relu => up.iter_mut().for_each(|v| *v = v.max(0.0)),
            }
            add(&mut h, &linear(&ll.down, &lr.bias[3], &up, b));
            let w = rows.mix[l + 1];
            mixed.iter_mut().zip(&h).for_each(|(m, v)| *m += w * v);
        }
    }
    let projected: Vec<(Vec<f32>, Vec<f32>)> = rows
        .projections
        .iter()
        .zip(&linears.projections)
        .map(|(pr, pl)| {
            let n = pr.norm.as_ref().map(|n| n.forward(&mixed));
            let n = n.as_deref().unwrap_or(&mixed);
            (
                linear(&pl.key, &pr.bias[0], n, b),
                linear(&pl.value, &pr.bias[1], n, b),
            )
        })
        .collect();
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
    tensor3(h, [b, 1, d], &device)
}

fn tensor3(values: Vec<f32>, dims: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values, dims), device)
}
