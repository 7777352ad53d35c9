//! The dot products and `axpy` of the window kernels, per instruction set.

/// Lanes of the dot-product accumulator: independent partial sums let the compiler use vector
/// registers (an iterator `sum` is a sequential chain of adds).
const LANES: usize = 16;

/// Sum of the lanes as a tree (4 vector adds instead of 15 dependent scalar adds).
#[inline(always)]
fn reduce(mut acc: [f32; LANES]) -> f32 {
    let mut half = LANES / 2;
    while half > 0 {
        for l in 0..half {
            acc[l] += acc[l + half];
        }
        half /= 2;
    }
    acc[0]
}

/// The dot products of the kernels, per instruction set: the compiler's auto-vectorisation of
/// the generic version splits a 64-long dot into 2-lane pieces, so AVX-512 gets intrinsics.
pub(super) trait Dots {
    /// `a · b`.
    fn dot(a: &[f32], b: &[f32]) -> f32;
    /// `q · (k + p)`.
    fn dot_sum(q: &[f32], k: &[f32], p: &[f32]) -> f32;
}

/// Plain Rust dot products.
pub(super) struct Generic;

impl Dots for Generic {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot(a, b)
    }
    #[inline(always)]
    fn dot_sum(q: &[f32], k: &[f32], p: &[f32]) -> f32 {
        dot_sum(q, k, p)
    }
}

/// AVX-512F dot products; only instantiated inside [`run_avx512`](super::run_avx512).
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Dots for Avx512 {
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `Avx512` is only used by `run_avx512`, which runs only after
        // `Isa::supported` found AVX-512F.
        unsafe { dot_sum_avx512(a, b, None) }
    }
    #[inline(always)]
    fn dot_sum(q: &[f32], k: &[f32], p: &[f32]) -> f32 {
        // SAFETY: as above.
        unsafe { dot_sum_avx512(q, k, Some(p)) }
    }
}

/// `q · (k + p)` (or `q · k`) with 16-lane fused multiply-adds.
///
/// # Safety
/// The CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_sum_avx512(q: &[f32], k: &[f32], p: Option<&[f32]>) -> f32 {
    use std::arch::x86_64::*;
    let n = q.len().min(k.len()).min(p.map_or(usize::MAX, <[f32]>::len));
    let full = n - n % 16;
    let mut acc = _mm512_setzero_ps();
    let mut i = 0;
    while i < full {
        // SAFETY: i + 16 <= full <= the length of every slice read.
        unsafe {
            let mut kv = _mm512_loadu_ps(k.as_ptr().add(i));
            if let Some(p) = p {
                kv = _mm512_add_ps(kv, _mm512_loadu_ps(p.as_ptr().add(i)));
            }
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(q.as_ptr().add(i)), kv, acc);
        }
        i += 16;
    }
    let mut sum = _mm512_reduce_add_ps(acc);
    for j in full..n {
        sum += q[j] * (k[j] + p.map_or(0.0, |p| p[j]));
    }
    sum
}

/// `a · b`.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
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
    reduce(acc) + tail
}

/// `q · (k + p)`: the key and position terms of a score in one pass.
#[inline(always)]
fn dot_sum(q: &[f32], k: &[f32], p: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (cq, ck, cp) = (
        q.chunks_exact(LANES),
        k.chunks_exact(LANES),
        p.chunks_exact(LANES),
    );
    let tail: f32 = (cq
        .remainder()
        .iter()
        .zip(ck.remainder())
        .zip(cp.remainder()))
    .map(|((q, k), p)| q * (k + p))
    .sum();
    for ((q, k), p) in cq.zip(ck).zip(cp) {
        for l in 0..LANES {
            acc[l] += q[l] * (k[l] + p[l]);
        }
    }
    reduce(acc) + tail
}

/// `y += alpha · x`.
#[inline(always)]
pub(super) fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}
