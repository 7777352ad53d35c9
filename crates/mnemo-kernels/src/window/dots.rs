//! The dot products and `axpy` of the window kernels, per instruction set.
use crate::softmax_rows::{LANES, row_dot as dot, tree_sum};

/// The dot products of the kernels, per instruction set: the compiler's auto-vectorisation of
/// the generic version splits a 64-long dot into 2-lane pieces, so AVX-512 gets intrinsics;
/// the scores of many rows ([`Dots::dots`]) are summed across registers in blocks (AVX-512
/// and AVX2), not one horizontal sum per row.
pub(super) trait Dots {
    /// `a · b` (by default the portable loop, which the compiler vectorises).
    #[inline(always)]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot(a, b)
    }
    /// `q · (k + p)` (by default the portable loop).
    #[inline(always)]
    fn dot_sum(q: &[f32], k: &[f32], p: &[f32]) -> f32 {
        dot_sum(q, k, p)
    }
    /// `out[j] = q · (rows[j] + add[j])` (without `add`: `q · rows[j]`) for the first
    /// `out.len()` rows.
    ///
    /// # Shapes
    /// - q: `[Dh]`; rows, add: `[≥ n, Dh]`; out: `[n]`
    #[inline(always)]
    fn dots(q: &[f32], rows: &[f32], add: Option<&[f32]>, out: &mut [f32])
    where
        Self: Sized,
    {
        row_by_row::<Self>(q, rows, add, out)
    }
}

/// [`Dots::dots`] with one of `D`'s dot products per row.
#[inline(always)]
fn row_by_row<D: Dots>(q: &[f32], rows: &[f32], add: Option<&[f32]>, out: &mut [f32]) {
    let dh = q.len();
    for (j, o) in out.iter_mut().enumerate() {
        let r = &rows[j * dh..(j + 1) * dh];
        *o = match add {
            Some(add) => D::dot_sum(q, r, &add[j * dh..(j + 1) * dh]),
            None => D::dot(q, r),
        };
    }
}

/// A kernel for [`Dots::dots`] of `R` rows at once (`R` also its lanes).
type BlockDots = unsafe fn(&[f32], &[f32], Option<&[f32]>, &mut [f32]);

/// [`Dots::dots`] in blocks of `R` rows by `block` where `Dh` is a multiple of `R`, the
/// remaining rows (all of them otherwise) one by one with `D`'s dot products.
///
/// # Safety
/// The CPU supports the instruction set `block` is compiled for.
#[inline(always)]
unsafe fn dots_in_blocks<D: Dots, const R: usize>(
    q: &[f32],
    rows: &[f32],
    add: Option<&[f32]>,
    out: &mut [f32],
    block: BlockDots,
) {
    let dh = q.len();
    let n = out.len();
    let blocked = match dh % R {
        0 => n - n % R,
        _ => 0,
    };
    assert!(rows.len() >= n * dh && add.is_none_or(|a| a.len() >= n * dh));
    for j0 in (0..blocked).step_by(R) {
        let rows = &rows[j0 * dh..(j0 + R) * dh];
        let add = add.map(|a| &a[j0 * dh..(j0 + R) * dh]);
        // SAFETY: the CPU supports `block`'s instruction set (this function's contract); the
        // slices hold R rows of `dh` values, `dh` a multiple of R (checked above), and
        // `out[j0..j0 + R]` is inside `out`: `block`'s requirements.
        unsafe { block(q, rows, add, &mut out[j0..j0 + R]) }
    }
    let tail = blocked * dh..n * dh;
    let add = add.map(|a| &a[tail.clone()]);
    row_by_row::<D>(q, &rows[tail], add, &mut out[blocked..]);
}

/// Plain Rust dot products.
pub(super) struct Generic;

impl Dots for Generic {}

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
    #[inline(always)]
    fn dots(q: &[f32], rows: &[f32], add: Option<&[f32]>, out: &mut [f32]) {
        // SAFETY: as above.
        unsafe { dots_in_blocks::<Self, 16>(q, rows, add, out, dots16_avx512) }
    }
}

/// AVX2 + FMA dot products: the generic ones (auto-vectorised), with [`Dots::dots`] in blocks
/// of 8 rows; only instantiated inside [`run_avx2`](super::run_avx2).
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Dots for Avx2 {
    #[inline(always)]
    fn dots(q: &[f32], rows: &[f32], add: Option<&[f32]>, out: &mut [f32]) {
        // SAFETY: `Avx2` is only used by `run_avx2`, which runs only after `Isa::supported`
        // found AVX2 and FMA.
        unsafe { dots_in_blocks::<Self, 8>(q, rows, add, out, dots8_avx2) }
    }
}

/// A vector register of `f32` lanes, for the block dot products written once over it.
#[cfg(target_arch = "x86_64")]
trait Register: Copy {
    /// Values per register.
    const LANES: usize;
    /// All lanes 0.
    ///
    /// # Safety
    /// The CPU supports the register's instruction set (as for every method).
    unsafe fn zero() -> Self;
    /// `LANES` values from `p` on.
    ///
    /// # Safety
    /// As [`zero`](Self::zero); `p .. p + LANES` is readable.
    unsafe fn load(p: *const f32) -> Self;
    /// `a + b` per lane.
    ///
    /// # Safety
    /// As [`zero`](Self::zero).
    unsafe fn add(a: Self, b: Self) -> Self;
    /// `a · b + c` per lane.
    ///
    /// # Safety
    /// As [`zero`](Self::zero).
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
}

/// `impl Register for $reg` with its instruction set's intrinsics.
macro_rules! register {
    ($reg:ident, $lanes:expr, $zero:ident, $load:ident, $add:ident, $fmadd:ident) => {
        #[cfg(target_arch = "x86_64")]
        impl Register for std::arch::x86_64::$reg {
            const LANES: usize = $lanes;
            #[inline(always)]
            unsafe fn zero() -> Self {
                // SAFETY: the caller's CPU supports the register's instruction set.
                unsafe { std::arch::x86_64::$zero() }
            }
            #[inline(always)]
            unsafe fn load(p: *const f32) -> Self {
                // SAFETY: as above; `p .. p + LANES` is readable (the caller's contract).
                unsafe { std::arch::x86_64::$load(p) }
            }
            #[inline(always)]
            unsafe fn add(a: Self, b: Self) -> Self {
                // SAFETY: as above.
                unsafe { std::arch::x86_64::$add(a, b) }
            }
            #[inline(always)]
            unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
                // SAFETY: as above.
                unsafe { std::arch::x86_64::$fmadd(a, b, c) }
            }
        }
    };
}
register!(
    __m256,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_add_ps,
    _mm256_fmadd_ps
);
register!(
    __m512,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_add_ps,
    _mm512_fmadd_ps
);

/// One accumulator register per row of a block of `R` rows: lane sums of
/// `q · (rows[j] + add[j])` over the head, `V::LANES` columns at a time (inlined into the
/// `#[target_feature]` block kernels).
///
/// # Safety
/// The CPU supports `V`'s instruction set; `q.len()` is a multiple of `V::LANES`; `rows` (and
/// `add`) hold `R` rows of `q.len()` values.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn block_accumulators<V: Register, const R: usize>(
    q: &[f32],
    rows: &[f32],
    add: Option<&[f32]>,
) -> [V; R] {
    let dh = q.len();
    debug_assert!(dh.is_multiple_of(V::LANES) && rows.len() >= R * dh);
    // SAFETY: the CPU supports `V`'s instruction set (as for every call below).
    let mut acc = [unsafe { V::zero() }; R];
    for c in (0..dh).step_by(V::LANES) {
        // SAFETY: c + LANES <= dh: inside q, and inside row j (j·dh + c + LANES <= R·dh) of
        // `rows` and `add`.
        unsafe {
            let qv = V::load(q.as_ptr().add(c));
            for (j, a) in acc.iter_mut().enumerate() {
                let mut r = V::load(rows.as_ptr().add(j * dh + c));
                if let Some(add) = add {
                    r = V::add(r, V::load(add.as_ptr().add(j * dh + c)));
                }
                *a = V::fmadd(qv, r, *a);
            }
        }
    }
    acc
}

/// `out[j] = q · (rows[j] + add[j])` for 8 rows at once: 8 accumulators over the head, then
/// one transposing tree of horizontal adds instead of 8 horizontal sums.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `q.len()` is a multiple of 8, `rows` (and `add`) hold 8 rows
/// of `q.len()` values and `out` 8 values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots8_avx2(q: &[f32], rows: &[f32], add: Option<&[f32]>, out: &mut [f32]) {
    use std::arch::x86_64::*;
    // SAFETY: the CPU supports AVX2 and FMA; the lengths are this function's contract.
    let acc: [__m256; 8] = unsafe { block_accumulators(q, rows, add) };
    // Two levels of horizontal adds leave, per 128-bit half, four partial sums of rows 0–3
    // (then of 4–7); adding the halves crosswise gives the eight sums in order.
    let h = |a, b| _mm256_hadd_ps(a, b);
    let low4 = h(h(acc[0], acc[1]), h(acc[2], acc[3]));
    let high4 = h(h(acc[4], acc[5]), h(acc[6], acc[7]));
    let sums = _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(low4, high4),
        _mm256_permute2f128_ps::<0x31>(low4, high4),
    );
    // SAFETY: out holds 8 values.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sums) }
}

/// `out[j] = q · (rows[j] + add[j])` for 16 rows at once: 16 accumulators over the head, then
/// one transposing tree (15 two-register shuffles and adds) instead of 16 horizontal sums.
///
/// # Safety
/// The CPU supports AVX-512F; `q.len()` is a multiple of 16, `rows` (and `add`) hold 16 rows
/// of `q.len()` values and `out` 16 values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dots16_avx512(q: &[f32], rows: &[f32], add: Option<&[f32]>, out: &mut [f32]) {
    use std::arch::x86_64::*;
    // SAFETY: the CPU supports AVX-512F; the lengths are this function's contract.
    let acc: [__m512; 16] = unsafe { block_accumulators(q, rows, add) };
    // Each level halves the registers and the lanes per row: 16 registers × 16 lanes of one
    // row each → 8 × (2 rows × 8 lanes) → 4 × (4 × 4) → 2 × (8 × 2) → 1 × (16 × 1), where lane
    // 4k + e ends holding row k + 4e.
    let halves = |a: __m512, b: __m512| {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
            _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
        )
    };
    let quarters = |a: __m512, b: __m512| {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b),
        )
    };
    let pairs = |a: __m512, b: __m512| {
        _mm512_add_ps(
            _mm512_shuffle_ps::<0b10_00_10_00>(a, b),
            _mm512_shuffle_ps::<0b11_01_11_01>(a, b),
        )
    };
    let l1: [__m512; 8] = std::array::from_fn(|m| halves(acc[2 * m], acc[2 * m + 1]));
    let l2: [__m512; 4] = std::array::from_fn(|m| quarters(l1[2 * m], l1[2 * m + 1]));
    let l3: [__m512; 2] = std::array::from_fn(|m| pairs(l2[2 * m], l2[2 * m + 1]));
    let sums = pairs(l3[0], l3[1]);
    // Row j sits in lane 4·(j mod 4) + j / 4.
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    // SAFETY: out holds 16 values.
    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), _mm512_permutexvar_ps(order, sums)) }
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
    tree_sum(acc) + tail
}

/// `dst += Σ_j coeff[j] · (rows[j] + add[j])` (without `add`: `coeff[j] · rows[j]`), in
/// blocks of up to 64 columns kept in a local array (registers) over all rows: the same
/// additions in the same order as one `axpy` per row, without loading and storing `dst` per
/// row.
///
/// # Shapes
/// - dst: `[Dh]`; coeff: `[n]`; rows, add: `[≥ n, Dh]`
#[inline(always)]
pub(super) fn add_weighted_rows(dst: &mut [f32], coeff: &[f32], rows: &[f32], add: Option<&[f32]>) {
    match dst.len() {
        dh if dh % 64 == 0 => add_weighted_blocks::<64>(dst, coeff, rows, add),
        dh if dh % 32 == 0 => add_weighted_blocks::<32>(dst, coeff, rows, add),
        dh if dh % 16 == 0 => add_weighted_blocks::<16>(dst, coeff, rows, add),
        dh => {
            for (j, &c) in coeff.iter().enumerate() {
                let r = &rows[j * dh..(j + 1) * dh];
                match add {
                    Some(add) => {
                        let p = &add[j * dh..(j + 1) * dh];
                        for ((d, r), p) in dst.iter_mut().zip(r).zip(p) {
                            *d += c * (r + p);
                        }
                    }
                    None => axpy(dst, c, r),
                }
            }
        }
    }
}

/// [`add_weighted_rows`] for `Dh` a multiple of `W`.
#[inline(always)]
fn add_weighted_blocks<const W: usize>(
    dst: &mut [f32],
    coeff: &[f32],
    rows: &[f32],
    add: Option<&[f32]>,
) {
    let dh = dst.len();
    for c0 in (0..dh).step_by(W) {
        let out: &mut [f32; W] = (&mut dst[c0..c0 + W]).try_into().expect("a block");
        let mut acc = *out;
        for (j, &c) in coeff.iter().enumerate() {
            let at = j * dh + c0;
            let r: &[f32; W] = rows[at..at + W].try_into().expect("a block");
            match add {
                Some(add) => {
                    let p: &[f32; W] = add[at..at + W].try_into().expect("a block");
                    for l in 0..W {
                        acc[l] += c * (r[l] + p[l]);
                    }
                }
                None => {
                    for l in 0..W {
                        acc[l] += c * r[l];
                    }
                }
            }
        }
        *out = acc;
    }
}

/// `y += alpha · x`.
#[inline(always)]
pub(super) fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}
