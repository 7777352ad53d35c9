//! Attention of one query per row over a window of keys/values with a learned relative
//! position term, forward and backward, on host memory (the Feedback Transformer's per-step
//! attention; see `mnemo_core::attend` for the tensor form).
//!
//! Layouts: `I = B·H` independent rows; a buffer of keys or values is `[I, slots, Dh]` and
//! the window of one step is slots `start .. start + S`; positions are `[S, Dh]` (slot `j` of
//! the window uses `pos[j]`). Scores `s_j = (q·k_j + q·p_j) · scale`, `a = softmax(s)`,
//! `o = Σ_j a_j v_j`.
//!
//! The loops are plain safe Rust, each kernel's written once (a `Kernel`) and compiled once per
//! instruction set by `on_isa` (`#[target_feature]` wrappers chosen by the caller's
//! [`Isa`](crate::Isa)) so that they vectorise with AVX-512 or AVX2 where the CPU has it.

/// Sizes of a window of keys/values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowShape {
    /// Independent rows `I = B·H`.
    pub rows: usize,
    /// Slots per row in the key/value buffers.
    pub slots: usize,
    /// Window length `S`.
    pub span: usize,
    /// Head size `Dh`.
    pub dh: usize,
}

impl WindowShape {
    /// Where slot `slot` of row `i` begins in an `[I, slots, Dh]` buffer.
    #[inline(always)]
    fn offset(&self, i: usize, slot: usize) -> usize {
        (i * self.slots + slot) * self.dh
    }

    /// Panics naming the window if slots `start .. start + S` leave the buffer.
    fn check_window(&self, start: usize) {
        let (span, slots) = (self.span, self.slots);
        assert!(
            start + span <= slots,
            "window {start}..{} outside {slots} slots",
            start + span
        );
    }

    /// Panics naming `what` unless `buf` holds `[I, slots, Dh]` values.
    fn check_buffer(&self, buf: &[f32], what: &str) {
        assert_eq!(
            buf.len(),
            self.rows * self.slots * self.dh,
            "{what} must hold rows·slots·dh values"
        );
    }
}

/// One step's window: the buffers it reads and where.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// The instruction set to run on (normally [`Isa::detect`](crate::Isa::detect)).
    pub isa: crate::Isa,
    /// Buffer sizes.
    pub shape: WindowShape,
    /// First slot of the window.
    pub start: usize,
    /// Score scale (`1/√Dh`).
    pub scale: f32,
    /// Keys `[I, slots, Dh]`.
    pub keys: &'a [f32],
    /// Values `[I, slots, Dh]`.
    pub values: &'a [f32],
    /// Relative positions `[S, Dh]`.
    pub pos: &'a [f32],
}

impl<'a> Window<'a> {
    /// The keys and the values of row `i`'s window, `[S, Dh]` each (slot `j` at `j·Dh`).
    #[inline(always)]
    fn row(&self, i: usize) -> (&'a [f32], &'a [f32]) {
        let WindowShape { span, dh, .. } = self.shape;
        let base = self.shape.offset(i, self.start);
        let end = base + span * dh;
        (&self.keys[base..end], &self.values[base..end])
    }

    /// Rows `rows` alone, as a window of its own (the queries, probabilities and outputs of
    /// [`window_attend`] over it are those rows' parts).
    ///
    /// # Panics
    /// If the range is not within the window's rows.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Window<'a> {
        assert!(
            rows.start <= rows.end && rows.end <= self.shape.rows,
            "rows {rows:?} of a window of {} rows",
            self.shape.rows
        );
        let (_, tail) = self.split_rows(rows.start);
        tail.split_rows(rows.len()).0
    }

    /// Rows `0..h` and rows `h..` as windows of their own (each row's slots are contiguous).
    fn split_rows(&self, h: usize) -> (Window<'a>, Window<'a>) {
        let WindowShape {
            rows, slots, dh, ..
        } = self.shape;
        let at = h * slots * dh;
        let (k0, k1) = self.keys.split_at(at);
        let (v0, v1) = self.values.split_at(at);
        let part = |rows, keys, values| Window {
            shape: WindowShape { rows, ..self.shape },
            keys,
            values,
            ..*self
        };
        (part(h, k0, v0), part(rows - h, k1, v1))
    }

    fn check(&self, q: &[f32], probs: &[f32]) {
        let WindowShape { rows, span, dh, .. } = self.shape;
        self.shape.check_window(self.start);
        assert_eq!(
            q.len(),
            rows * dh,
            "queries must hold rows·dh = {rows}·{dh} values"
        );
        self.shape.check_buffer(self.keys, "keys");
        self.shape.check_buffer(self.values, "values");
        assert_eq!(
            self.pos.len(),
            span * dh,
            "positions must hold span·dh values"
        );
        assert_eq!(probs.len(), rows * span, "probs must hold rows·span values");
    }
}

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
trait Dots {
    /// `a · b`.
    fn dot(a: &[f32], b: &[f32]) -> f32;
    /// `q · (k + p)`.
    fn dot_sum(q: &[f32], k: &[f32], p: &[f32]) -> f32;
}

/// Plain Rust dot products.
struct Generic;

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

/// AVX-512F dot products; only instantiated inside [`run_avx512`].
#[cfg(target_arch = "x86_64")]
struct Avx512;

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
fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// A kernel's loops over its arguments, generic over the dot products; [`on_isa`] compiles
/// them once per instruction set.
trait Kernel {
    /// Run the loops with the dot products `D` (inlined into the `#[target_feature]` wrapper).
    fn run<D: Dots>(self);
}

/// Run `kernel` compiled for `isa`: AVX-512F with its dot products, AVX2 + FMA with the
/// generic ones auto-vectorised, or plain Rust.
///
/// # Panics
/// If the CPU does not support `isa`.
fn on_isa(isa: crate::Isa, kernel: impl Kernel) {
    assert!(isa.supported(), "this CPU does not support {isa:?}");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `supported` found AVX-512F on this CPU (asserted above).
        crate::Isa::Avx512 => unsafe { run_avx512(kernel) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `supported` found AVX2 and FMA on this CPU (asserted above).
        crate::Isa::Avx2 => unsafe { run_avx2(kernel) },
        _ => kernel.run::<Generic>(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn run_avx512(kernel: impl Kernel) {
    kernel.run::<Avx512>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(kernel: impl Kernel) {
    kernel.run::<Generic>()
}

/// Forward: writes the attention probabilities and outputs.
///
/// # Shapes
/// - q: `[I, Dh]`
/// - probs: `[I, S]`; out: `[I, Dh]` (overwritten)
///
/// # Panics
/// If a length does not match the window's shape or the window leaves the buffer.
pub fn window_attend(w: &Window, q: &[f32], probs: &mut [f32], out: &mut [f32]) {
    w.check(q, probs);
    assert_eq!(out.len(), q.len(), "out must hold rows·dh values");
    let WindowShape { span, dh, .. } = w.shape;
    match split_rows_at(w.shape) {
        Some(h) => {
            let (w0, w1) = w.split_rows(h);
            let (q0, q1) = q.split_at(h * dh);
            let (p0, p1) = probs.split_at_mut(h * span);
            let (o0, o1) = out.split_at_mut(h * dh);
            let run = |w: &Window, q, probs, out| on_isa(w.isa, Attend { w, q, probs, out });
            crate::helper::both(|| run(&w0, q0, p0, o0), || run(&w1, q1, p1, o1));
        }
        None => on_isa(w.isa, Attend { w, q, probs, out }),
    }
}

/// Windows of at least this many key values (`I·S·Dh`) split their rows with the helper
/// thread ([`crate::helper`]); each row is computed alone either way, so the result is the
/// same bit for bit. 2¹⁵ takes in batch-1 decoding of the peer config (4 rows × 128 slots ×
/// 64), which gained 7 % from it (docs/performance.md).
const SPLIT_MIN_VALUES: usize = 1 << 15;

/// Where to split a window's rows between this thread and the helper (None: do not split).
fn split_rows_at(shape: WindowShape) -> Option<usize> {
    let WindowShape { rows, span, dh, .. } = shape;
    (rows >= 2 && rows * span * dh >= SPLIT_MIN_VALUES).then_some(rows / 2)
}

/// The forward loops' arguments, as [`window_attend`] takes them.
struct Attend<'a, 'w> {
    w: &'a Window<'w>,
    q: &'a [f32],
    probs: &'a mut [f32],
    out: &'a mut [f32],
}

impl Kernel for Attend<'_, '_> {
    #[inline(always)]
    fn run<D: Dots>(self) {
        let Attend { w, q, probs, out } = self;
        let WindowShape { rows, span, dh, .. } = w.shape;
        for i in 0..rows {
            let (keys, values) = w.row(i);
            let qi = &q[i * dh..(i + 1) * dh];
            let a = &mut probs[i * span..(i + 1) * span];
            let mut max = f32::NEG_INFINITY;
            for (j, aj) in a.iter_mut().enumerate() {
                let k = &keys[j * dh..(j + 1) * dh];
                let p = &w.pos[j * dh..(j + 1) * dh];
                *aj = D::dot_sum(qi, k, p) * w.scale;
                max = max.max(*aj);
            }
            let mut sum = 0.0;
            for aj in a.iter_mut() {
                *aj = (*aj - max).exp();
                sum += *aj;
            }
            let o = &mut out[i * dh..(i + 1) * dh];
            o.fill(0.0);
            for (j, aj) in a.iter_mut().enumerate() {
                *aj /= sum;
                axpy(o, *aj, &values[j * dh..(j + 1) * dh]);
            }
        }
    }
}

/// Gradients written by [`window_attend_backward`].
#[derive(Debug)]
pub struct WindowGrads<'a> {
    /// `dL/dq`, `[I, Dh]` (overwritten).
    pub dq: &'a mut [f32],
    /// Gradient of the scaled scores, `[I, S]` (overwritten).
    pub dscores: &'a mut [f32],
}

/// Backward of [`window_attend`] given `dL/dout`, except the key/value gradients: those are
/// `dK[start+j] += dscores_j · q` and `dV[start+j] += probs_j · d_out`, added with
/// [`window_accumulate`] once for all layers that read the window.
///
/// # Shapes
/// - d_out: `[I, Dh]`; probs: `[I, S]`
///
/// # Panics
/// If a length does not match the window's shape or the window leaves the buffer.
pub fn window_attend_backward(w: &Window, probs: &[f32], d_out: &[f32], g: WindowGrads) {
    w.check(d_out, probs);
    let WindowShape { rows, span, dh, .. } = w.shape;
    assert_eq!(d_out.len(), rows * dh, "d_out must hold rows·dh values");
    assert_eq!(g.dq.len(), rows * dh, "dq must hold rows·dh values");
    assert_eq!(
        g.dscores.len(),
        rows * span,
        "dscores must hold rows·span values"
    );
    match split_rows_at(w.shape) {
        Some(h) => {
            let (w0, w1) = w.split_rows(h);
            let (a0, a1) = probs.split_at(h * span);
            let (d0, d1) = d_out.split_at(h * dh);
            let (dq0, dq1) = g.dq.split_at_mut(h * dh);
            let (ds0, ds1) = g.dscores.split_at_mut(h * span);
            let run = |w: &Window, probs, d_out, dq, dscores| {
                let g = WindowGrads { dq, dscores };
                on_isa(w.isa, Backward { w, probs, d_out, g })
            };
            crate::helper::both(|| run(&w0, a0, d0, dq0, ds0), || run(&w1, a1, d1, dq1, ds1));
        }
        None => on_isa(w.isa, Backward { w, probs, d_out, g }),
    }
}

/// The backward loops' arguments, as [`window_attend_backward`] takes them.
struct Backward<'a, 'w> {
    w: &'a Window<'w>,
    probs: &'a [f32],
    d_out: &'a [f32],
    g: WindowGrads<'a>,
}

impl Kernel for Backward<'_, '_> {
    #[inline(always)]
    fn run<D: Dots>(self) {
        let Backward { w, probs, d_out, g } = self;
        let WindowShape { rows, span, dh, .. } = w.shape;
        for i in 0..rows {
            let (keys, values) = w.row(i);
            let doi = &d_out[i * dh..(i + 1) * dh];
            let a = &probs[i * span..(i + 1) * span];
            let ds = &mut g.dscores[i * span..(i + 1) * span];
            // da_j = d_out · v_j; ds_j = a_j (da_j - Σ a da) · scale
            let mut weighted = 0.0;
            for (j, dsj) in ds.iter_mut().enumerate() {
                *dsj = D::dot(doi, &values[j * dh..(j + 1) * dh]);
                weighted += a[j] * *dsj;
            }
            for (dsj, aj) in ds.iter_mut().zip(a) {
                *dsj = aj * (*dsj - weighted) * w.scale;
            }
            let dqi = &mut g.dq[i * dh..(i + 1) * dh];
            dqi.fill(0.0);
            for (j, &dsj) in ds.iter().enumerate() {
                let (k, p) = (&keys[j * dh..(j + 1) * dh], &w.pos[j * dh..(j + 1) * dh]);
                for ((d, k), p) in dqi.iter_mut().zip(k).zip(p) {
                    *d += dsj * (k + p);
                }
            }
        }
    }
}

/// One term of a window's key or value gradient: `buf[i, start + j] += coeff[i, j] · vec[i]`
/// for every row `i` and window slot `j` (keys: coefficients = score gradients, vectors =
/// queries; values: probabilities and output gradients).
#[derive(Debug, Clone, Copy)]
pub struct WindowTerm<'a> {
    /// First slot of the window the term belongs to.
    pub start: usize,
    /// `[I, S]`.
    pub coeff: &'a [f32],
    /// `[I, Dh]`.
    pub vec: &'a [f32],
}

/// Checks the terms and the `[I, slots, Dh]` buffer they are added to.
fn check_terms(shape: WindowShape, terms: &[WindowTerm], buf: &[f32]) {
    let WindowShape { rows, span, dh, .. } = shape;
    for t in terms {
        shape.check_window(t.start);
        assert_eq!(
            t.coeff.len(),
            rows * span,
            "coefficients must hold rows·span values"
        );
        assert_eq!(t.vec.len(), rows * dh, "vectors must hold rows·dh values");
    }
    shape.check_buffer(buf, "the buffer");
}

/// Add every term to `buf`, visiting each slot of each row once for all terms (the terms of
/// several layers and steps share one pass over the buffer).
///
/// # Shapes
/// - buf: `[I, slots, Dh]`
///
/// # Panics
/// If a length does not match `shape` or a window leaves the buffer.
pub fn window_accumulate(
    isa: crate::Isa,
    shape: WindowShape,
    terms: &[WindowTerm],
    buf: &mut [f32],
) {
    check_terms(shape, terms, buf);
    let WindowShape {
        span, slots, dh, ..
    } = shape;
    match split_rows_at(shape) {
        Some(h) => {
            // Rows 0..h and h.. of every term and of the buffer.
            let (t0, t1): (Vec<_>, Vec<_>) = terms
                .iter()
                .map(|t| {
                    let (c0, c1) = t.coeff.split_at(h * span);
                    let (v0, v1) = t.vec.split_at(h * dh);
                    let part = |coeff, vec| WindowTerm {
                        start: t.start,
                        coeff,
                        vec,
                    };
                    (part(c0, v0), part(c1, v1))
                })
                .unzip();
            let (b0, b1) = buf.split_at_mut(h * slots * dh);
            let run = |rows, terms: &[WindowTerm], buf| {
                let shape = WindowShape { rows, ..shape };
                on_isa(isa, Accumulate { shape, terms, buf })
            };
            crate::helper::both(|| run(h, &t0, b0), || run(shape.rows - h, &t1, b1));
        }
        None => on_isa(isa, Accumulate { shape, terms, buf }),
    }
}

/// The accumulation loops' arguments, as [`window_accumulate`] takes them.
struct Accumulate<'a, 't> {
    shape: WindowShape,
    terms: &'a [WindowTerm<'t>],
    buf: &'a mut [f32],
}

impl Kernel for Accumulate<'_, '_> {
    /// No dot products: only the `axpy` loops, vectorised for the instruction set.
    #[inline(always)]
    fn run<D: Dots>(self) {
        let Accumulate { shape, terms, buf } = self;
        let WindowShape { rows, span, dh, .. } = shape;
        let Some(lo) = terms.iter().map(|t| t.start).min() else {
            return;
        };
        let hi = terms.iter().map(|t| t.start + span).max().unwrap_or(lo);
        for i in 0..rows {
            for slot in lo..hi {
                let at = shape.offset(i, slot);
                add_terms(&mut buf[at..at + dh], terms, span, i, slot);
            }
        }
    }
}

/// Columns of an [`add_terms`] block: four 16-lane registers.
const BLOCK: usize = 64;

/// `dst += Σ_t coeff_t[i, slot - start_t] · vec_t[i]` over the terms whose window holds
/// `slot`: one slot of one row of a key or value gradient. Each block of [`BLOCK`] columns is
/// summed in a local array the compiler keeps in registers over all terms and stored once (the
/// same additions in the same order as adding the terms into `dst` one by one, which loaded
/// and stored `dst` once per term).
#[inline(always)]
fn add_terms(dst: &mut [f32], terms: &[WindowTerm], span: usize, i: usize, slot: usize) {
    let dh = dst.len();
    let holding = || {
        terms
            .iter()
            .filter(move |t| (t.start..t.start + span).contains(&slot))
            .map(move |t| {
                (
                    t.coeff[i * span + slot - t.start],
                    &t.vec[i * dh..(i + 1) * dh],
                )
            })
    };
    let blocks = dh - dh % BLOCK;
    for c0 in (0..blocks).step_by(BLOCK) {
        let out: &mut [f32; BLOCK] = (&mut dst[c0..c0 + BLOCK]).try_into().expect("a block");
        let mut acc = *out;
        for (coeff, vec) in holding() {
            let x: &[f32; BLOCK] = vec[c0..c0 + BLOCK].try_into().expect("a block");
            for l in 0..BLOCK {
                acc[l] += coeff * x[l];
            }
        }
        *out = acc;
    }
    if blocks < dh {
        for (coeff, vec) in holding() {
            axpy(&mut dst[blocks..], coeff, &vec[blocks..]);
        }
    }
}

/// Slot `slot` of `buf` plus every term's contribution to it, as rows `[I, Dh]` (`buf` is
/// not changed): the complete gradient of one slot while other terms are still pending.
///
/// # Shapes
/// - buf: `[I, slots, Dh]`; output: `[I, Dh]`
///
/// # Panics
/// If a length does not match `shape`, a window leaves the buffer, or `slot >= slots`.
pub fn window_slot(shape: WindowShape, slot: usize, terms: &[WindowTerm], buf: &[f32]) -> Vec<f32> {
    check_terms(shape, terms, buf);
    let WindowShape { rows, span, dh, .. } = shape;
    assert!(
        slot < shape.slots,
        "slot {slot} outside {} slots",
        shape.slots
    );
    let mut out = Vec::with_capacity(rows * dh);
    for i in 0..rows {
        let at = shape.offset(i, slot);
        out.extend_from_slice(&buf[at..at + dh]);
        add_terms(&mut out[i * dh..(i + 1) * dh], terms, span, i, slot);
    }
    out
}
