//! Attention of one query per row over a window of keys/values with a learned relative
//! position term, forward and backward, on host memory (the Feedback Transformer's per-step
//! attention; see `mnemo_core::attend` for the tensor form).
//!
//! Layouts: `I = B·H` independent rows; a buffer of keys or values is `[I, slots, Dh]` and
//! the window of one step is slots `start .. start + S`; positions are `[S, Dh]` (slot `j` of
//! the window uses `pos[j]`), or none. Scores `s_j = (q·k_j + q·p_j) · scale` (without
//! positions `q·k_j · scale`), `a = softmax(s)`,
//! `o = Σ_j a_j v_j`. The forward can take the window's oldest slots as one folded memory
//! ([`ZeroSlots`]: decoding from a fresh sequence's zero memories reads only what it decoded).
//!
//! The loops are plain safe Rust, each kernel's written once (a `Kernel`) and compiled once per
//! instruction set by `on_isa` (`#[target_feature]` wrappers chosen by the caller's
//! [`Isa`](crate::Isa)) so that they vectorise with AVX-512 or AVX2 where the CPU has it.

mod accumulate;
mod attend;
mod backward;
mod dots;

pub use accumulate::{WindowTerm, window_accumulate, window_slot};
pub use attend::window_attend;
pub use backward::{WindowGrads, window_attend_backward};
#[cfg(target_arch = "x86_64")]
use dots::{Avx2, Avx512};
use dots::{Dots, Generic};

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
    /// Relative positions `[S, Dh]` (None: the scores are `q·k_j · scale` alone, e.g. a
    /// decoder's attention over its source).
    pub pos: Option<&'a [f32]>,
    /// Where the window's oldest slots all hold one memory (None: every slot is read from the
    /// buffers).
    pub zeros: Option<ZeroSlots<'a>>,
}

/// The oldest `count` slots of a window, all holding one memory: a fresh sequence's zero
/// memories, folded. Their key and value are read once per row instead of once per slot and
/// each slot is scored with its own position, `s_j = (q·k₀ + q·p_j) · scale`; their
/// probabilities are summed onto `v₀`. The same attention as over the window with `(k₀, v₀)`
/// written into those slots, in another rounding order; the buffers' slots there are not read.
#[derive(Debug, Clone, Copy)]
pub struct ZeroSlots<'a> {
    /// How many of the window's S slots, the oldest, hold the zero memory (at most S).
    pub count: usize,
    /// The zero memory's key per row, `[I, Dh]`.
    pub keys: &'a [f32],
    /// The zero memory's value per row, `[I, Dh]`.
    pub values: &'a [f32],
}

/// One row's zero key and value, `[Dh]` each.
type ZeroRow<'a> = (&'a [f32], &'a [f32]);

impl<'a> ZeroSlots<'a> {
    /// Rows `0..h` and rows `h..`, for the windows of [`Window::split_rows`].
    fn split_rows(&self, h: usize, dh: usize) -> (ZeroSlots<'a>, ZeroSlots<'a>) {
        let (k0, k1) = self.keys.split_at(h * dh);
        let (v0, v1) = self.values.split_at(h * dh);
        let part = |keys, values| ZeroSlots {
            keys,
            values,
            ..*self
        };
        (part(k0, v0), part(k1, v1))
    }

    /// Row `i`'s zero key and value, `[Dh]` each.
    #[inline(always)]
    fn row(&self, i: usize, dh: usize) -> ZeroRow<'a> {
        let at = i * dh..(i + 1) * dh;
        (&self.keys[at.clone()], &self.values[at])
    }
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

    /// The positions of the window's first `n` slots and of the rest (None without
    /// positions).
    #[inline(always)]
    fn pos_split(&self, n: usize) -> (Option<&'a [f32]>, Option<&'a [f32]>) {
        match self.pos {
            Some(pos) => {
                let (folded, stored) = pos.split_at(n * self.shape.dh);
                (Some(folded), Some(stored))
            }
            None => (None, None),
        }
    }

    /// How many of row `i`'s oldest slots are folded zero memories, and (if any are) the
    /// row's zero key and value `[Dh]` each.
    #[inline(always)]
    fn zero_row(&self, i: usize) -> (usize, Option<ZeroRow<'a>>) {
        match self.zeros {
            Some(z) => (z.count, Some(z.row(i, self.shape.dh))),
            None => (0, None),
        }
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
        self.check_zeros();
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
        let (z0, z1) = match self.zeros.map(|z| z.split_rows(h, dh)) {
            Some((z0, z1)) => (Some(z0), Some(z1)),
            None => (None, None),
        };
        let part = |rows, keys, values, zeros| Window {
            shape: WindowShape { rows, ..self.shape },
            keys,
            values,
            zeros,
            ..*self
        };
        (part(h, k0, v0, z0), part(rows - h, k1, v1, z1))
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
        if let Some(pos) = self.pos {
            assert_eq!(pos.len(), span * dh, "positions must hold span·dh values");
        }
        assert_eq!(probs.len(), rows * span, "probs must hold rows·span values");
        self.check_zeros();
    }

    /// Panics unless the zero slots (if any) fit the window: at most S, one key and value per
    /// row.
    fn check_zeros(&self) {
        let WindowShape { rows, span, dh, .. } = self.shape;
        if let Some(z) = &self.zeros {
            assert!(
                z.count <= span,
                "{} zero slots in a window of {span}",
                z.count
            );
            assert_eq!(
                z.keys.len(),
                rows * dh,
                "zero keys must hold rows·dh values"
            );
            assert_eq!(
                z.values.len(),
                rows * dh,
                "zero values must hold rows·dh values"
            );
        }
    }
}

/// A kernel's loops over its arguments, generic over the dot products; [`on_isa`] compiles
/// them once per instruction set.
trait Kernel {
    /// Run the loops with the dot products `D` (inlined into the `#[target_feature]` wrapper).
    fn run<D: Dots>(self);
}

/// Run `kernel` compiled for `isa`: AVX-512F or AVX2 + FMA with their dot products, or plain
/// Rust.
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
    kernel.run::<Avx2>()
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
