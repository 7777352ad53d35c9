//! Row passes of the softmax family, in 16 independent lanes so that they vectorise (the
//! callers compile them per instruction set with [`on_isa!`](crate::dispatch::on_isa)): a
//! row's maximum, its shifted exponentials with their sum, a plain sum and a dot product.
//! Shared by the searches' log-softmax, the training cross-entropy, the window attention, the
//! block maxima of beam search and the step norms.
use crate::exp::exp_nonpositive;

/// Independent partial results per pass.
pub(crate) const LANES: usize = 16;

/// The largest value of a row (NaN where the row holds one).
#[inline(always)]
pub(crate) fn row_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| max(m, x));
    for c in chunks {
        for l in 0..LANES {
            acc[l] = max(acc[l], c[l]);
        }
    }
    acc.iter().fold(tail, |m, &x| max(m, x))
}

/// `max(a, b)`, NaN if either is NaN (a compare and a select: vectorises, unlike
/// `f32::max`, and a NaN logit shows in the result instead of vanishing).
#[inline(always)]
fn max(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() { b } else { a }
}

/// `out = exp(x − max)` over a row, and its sum (lanes summed as a tree at the end).
///
/// # Shapes
/// - row, out: `[V]`
#[inline(always)]
pub(crate) fn exp_shifted(row: &[f32], max: f32, out: &mut [f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (chunks, outs) = (row.chunks_exact(LANES), out.chunks_exact_mut(LANES));
    let mut tail = 0.0;
    for (&x, o) in chunks.remainder().iter().zip(outs.into_remainder()) {
        *o = exp_nonpositive(x - max);
        tail += *o;
    }
    for (c, o) in row.chunks_exact(LANES).zip(out.chunks_exact_mut(LANES)) {
        for l in 0..LANES {
            o[l] = exp_nonpositive(c[l] - max);
            acc[l] += o[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The sum of a row, in lanes (summed in order at the end).
#[inline(always)]
pub(crate) fn row_sum(row: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The dot product of two rows, in lanes (summed as a tree at the end): the window kernels'
/// portable dot product and the norms'.
///
/// # Shapes
/// - a, b: `[D]`
#[inline(always)]
pub(crate) fn row_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    tree_sum(acc) + tail
}

/// Sum of the lanes as a tree (4 vector adds instead of 15 dependent scalar adds).
#[inline(always)]
pub(crate) fn tree_sum(mut acc: [f32; LANES]) -> f32 {
    let mut half = LANES / 2;
    while half > 0 {
        for l in 0..half {
            acc[l] += acc[l + half];
        }
        half /= 2;
    }
    acc[0]
}
