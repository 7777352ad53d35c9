//! Hand-written CPU kernels for products with few rows and many features.
//!
//! The Feedback Transformer is sequential over time: at every step each layer multiplies a
//! batch of `B` rows (8 in the benchmark) by its weight matrices, forward and backward. General
//! GEMM libraries are tuned for large products; on `[8, 256] · [256, 1024]` the `gemm` crate
//! behind burn's CPU backend reaches 18–35 GFLOP/s on this machine, while its FMA units allow
//! ~110 (`docs/performance.md`). A [`PackedMatrix`] stores a weight matrix once in column
//! panels (contiguous `[k, panel]` blocks, so a panel streams through the prefetcher), and
//! [`PackedMatrix::matmul`] keeps a block of rows × one panel in registers while `k` runs,
//! loading each weight once per block of rows.
//!
//! Dispatch happens when a matrix is packed: AVX-512F, else AVX2 + FMA, else portable Rust
//! (also the path on non-x86 machines). Every path computes each output element as the same
//! chain of fused multiply-adds over `k` ascending, so all paths agree bit for bit; tests
//! compare each path the machine supports with a naive `f64` product.
//!
//! Large products and windows use the second core: one persistent helper thread (see
//! `helper.rs`; off with `MNEMO_KERNEL_THREADS=1`) takes half the column panels of a product
//! or half the rows of a window, spinning between jobs so that the products of one step reach
//! it awake. Results are bit for bit those of one thread.
//!
//! This is the only mnemo crate that uses `unsafe` (intrinsics and raw loads/stores); the
//! lengths every kernel relies on are checked once, in safe code, by [`PackedMatrix`].
#![warn(missing_docs)]

pub mod adamw;
#[cfg(feature = "allocator-options")]
pub mod allocator;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod block_max;
pub mod cross_entropy;
mod dispatch;
mod exp;
pub mod gelu;
mod helper;
pub mod log_softmax;
pub mod norm;
pub mod pair;
mod portable;
pub mod product;
#[cfg(target_arch = "x86_64")]
mod row_blocks;
mod softmax_rows;
pub mod window;

pub use adamw::{AdamWStep, adamw_update};
pub use block_max::block_maxima;
pub use cross_entropy::{CrossEntropySums, cross_entropy_loss_rows, cross_entropy_rows};
pub use gelu::{gelu, gelu_and_grad, gelu_in_place};
use helper::Helper;
pub use log_softmax::log_softmax_rows;
pub use norm::NormRows;
pub use pair::{Half, in_pair, in_pair_waiting};
pub use product::{Operand, product};
pub use window::{
    Window, WindowGrads, WindowShape, WindowTerm, ZeroSlots, window_accumulate, window_attend,
    window_attend_backward, window_slot,
};

/// An instruction set a [`PackedMatrix`] can be multiplied with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F: blocks of up to 8 rows × a 32-column panel in 16 `zmm` accumulators.
    Avx512,
    /// AVX2 with FMA: blocks of up to 4 rows × a 24-column panel in 12 `ymm` accumulators.
    Avx2,
    /// Plain Rust loops over 16-column panels (auto-vectorised for the build target).
    Portable,
}

impl Isa {
    /// The fastest instruction set this CPU supports.
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .find(|i| i.supported())
            .unwrap_or(Isa::Portable)
    }

    /// Whether this CPU can run kernels for `self`.
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Columns per panel of a matrix packed for this instruction set.
    pub fn panel(self) -> usize {
        match self {
            Isa::Avx512 => 32,
            Isa::Avx2 => 24,
            Isa::Portable => 16,
        }
    }
}

/// A `[k, n]` matrix packed into column panels for few-row products `x · M`.
///
/// Panel `p` holds columns `p·P .. p·P + P` (`P` = [`Isa::panel`]) as a contiguous row-major
/// `[k, P]` block; the last panel is zero-padded.
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    isa: Isa,
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedMatrix {
    /// Pack the row-major matrix `m` for the fastest instruction set of this CPU.
    ///
    /// # Shapes
    /// - m: `[k, n]`
    ///
    /// # Panics
    /// If `m.len() != k·n`.
    pub fn new(m: &[f32], k: usize, n: usize) -> Self {
        Self::with_isa(Isa::detect(), m, k, n)
    }

    /// Pack `m` for a chosen instruction set (tests and benchmarks compare them).
    ///
    /// # Shapes
    /// - m: `[k, n]`
    ///
    /// # Panics
    /// If `m.len() != k·n` or the CPU does not support `isa`.
    pub fn with_isa(isa: Isa, m: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(m.len(), k * n, "the matrix must hold k·n = {k}·{n} values");
        Self::packed(isa, k, n, |panel, c0, width, p| {
            for (kk, dst) in panel.chunks_exact_mut(p).enumerate() {
                dst[..width].copy_from_slice(&m[kk * n + c0..kk * n + c0 + width]);
            }
        })
    }

    /// Pack `M` given its transpose `m_t` (row-major `[n, k]`, e.g. a linear layer's weight
    /// read as `Wᵀ`): the same packed matrix as [`new`](Self::new) of `M`, without a transposed
    /// copy of it first.
    ///
    /// # Shapes
    /// - m_t: `[n, k]`
    ///
    /// # Panics
    /// If `m_t.len() != k·n`.
    pub fn from_transposed(m_t: &[f32], k: usize, n: usize) -> Self {
        Self::from_transposed_with_isa(Isa::detect(), m_t, k, n)
    }

    /// [`from_transposed`](Self::from_transposed) for a chosen instruction set.
    ///
    /// # Shapes
    /// - m_t: `[n, k]`
    ///
    /// # Panics
    /// If `m_t.len() != k·n` or the CPU does not support `isa`.
    pub fn from_transposed_with_isa(isa: Isa, m_t: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(
            m_t.len(),
            k * n,
            "the matrix must hold k·n = {k}·{n} values"
        );
        Self::packed(isa, k, n, |panel, c0, width, p| {
            // Column c of the panel is row c0 + c of `Mᵀ`: read each once, write it strided.
            for (c, column) in m_t[c0 * k..(c0 + width) * k].chunks_exact(k).enumerate() {
                for (kk, &v) in column.iter().enumerate() {
                    panel[kk * p + c] = v;
                }
            }
        })
    }

    /// The zero-padded panels of a `[k, n]` matrix, each `[k, P]` block filled by
    /// `fill(panel, first column, columns in this panel, P)`.
    fn packed(
        isa: Isa,
        k: usize,
        n: usize,
        fill: impl Fn(&mut [f32], usize, usize, usize),
    ) -> Self {
        assert!(isa.supported(), "this CPU does not support {isa:?}");
        let p = isa.panel();
        let panels = n.div_ceil(p);
        // Each panel is filled in a small zeroed block (in cache) and appended, so the large
        // buffer is written once instead of zeroed first (a decoding stream packs every
        // weight of the model).
        let mut data = Vec::with_capacity(panels * k * p);
        let mut block = vec![0.0f32; k * p];
        for pi in 0..panels {
            let c0 = pi * p;
            let width = (n - c0).min(p);
            if width < p {
                block.fill(0.0);
            }
            fill(&mut block, c0, width, p);
            data.extend_from_slice(&block);
        }
        Self { isa, k, n, data }
    }

    /// Rows of the matrix (`k`).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of the matrix (`n`).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The instruction set the matrix was packed for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// `out = x · M`; `out` is overwritten. Any `rows` works (blocks of 8, or 4 on AVX2).
    ///
    /// A product of at least `256·512` weights runs half its column panels on a helper thread
    /// ([`helper_thread`]), which spins between the products of a step instead of sleeping;
    /// each output element is the same chain of fused multiply-adds either way (bit for bit
    /// equal to [`matmul_one_thread`](Self::matmul_one_thread)).
    ///
    /// # Shapes
    /// - x: `[rows, k]`
    /// - out: `[rows, n]`
    ///
    /// # Panics
    /// If a slice's length does not match its shape.
    pub fn matmul(&self, x: &[f32], out: &mut [f32], rows: usize) {
        let (k, n) = (self.k, self.n);
        assert_eq!(x.len(), rows * k, "x must hold rows·k = {rows}·{k} values");
        assert_eq!(
            out.len(),
            rows * n,
            "out must hold rows·n = {rows}·{n} values"
        );
        if rows == 0 || n == 0 {
            return;
        }
        let panels = n.div_ceil(self.isa.panel());
        match k * n >= SPLIT_MIN_WEIGHTS && panels >= 4 && helper::may_split() {
            true => self.matmul_split(x, out, rows),
            false => self.matmul_one_thread(x, out, rows),
        }
    }

    /// [`matmul`](Self::matmul) on the calling thread only (what a small product runs). Bit
    /// for bit equal to `matmul`.
    ///
    /// # Shapes
    /// - x: `[rows, k]`
    /// - out: `[rows, n]`
    ///
    /// # Panics
    /// If a slice's length does not match its shape.
    pub fn matmul_one_thread(&self, x: &[f32], out: &mut [f32], rows: usize) {
        assert_eq!(x.len(), rows * self.k, "x must hold rows·k values");
        assert_eq!(out.len(), rows * self.n, "out must hold rows·n values");
        if rows == 0 || self.n == 0 {
            return;
        }
        self.kernel(x, &self.data, out, rows, self.n);
    }

    /// The columns part `part` of `parts` (1 or 2) computes in a split product: the first
    /// `⌊panels/2⌋` panels for part 0, the rest for part 1, as [`matmul`](Self::matmul) splits
    /// them with the helper (and as [`Half::share`] splits `0..n` in panels).
    pub fn part_columns(&self, part: usize, parts: usize) -> std::ops::Range<usize> {
        pair::share(self.n, self.isa.panel(), part, parts)
    }

    /// `out = x · M[:, cols]` on this thread, for `cols` from [`part_columns`](Self::part_columns)
    /// (or any range starting at a panel boundary and ending at one or at `n`): the same values
    /// bit for bit as those columns of [`matmul`](Self::matmul).
    ///
    /// # Shapes
    /// - x: `[rows, k]`
    /// - out: `[rows, cols.len()]`
    ///
    /// # Panics
    /// If `cols` does not start at a panel boundary, ends inside a panel before `n`, or a slice's
    /// length does not match its shape.
    pub fn matmul_columns(
        &self,
        x: &[f32],
        out: &mut [f32],
        rows: usize,
        cols: std::ops::Range<usize>,
    ) {
        let (k, n, p) = (self.k, self.n, self.isa.panel());
        assert!(
            cols.start <= cols.end
                && cols.end <= n
                && cols.start.is_multiple_of(p)
                && (cols.end == n || cols.end.is_multiple_of(p)),
            "columns {cols:?} of {n} do not start and end at {p}-column panels"
        );
        assert_eq!(x.len(), rows * k, "x must hold rows·k values");
        assert_eq!(
            out.len(),
            rows * cols.len(),
            "out must hold rows·cols values"
        );
        if rows == 0 || cols.is_empty() {
            return;
        }
        let panels = &self.data[cols.start / p * k * p..cols.end.div_ceil(p) * k * p];
        self.kernel(x, panels, out, rows, cols.len());
    }

    /// Part 0's columns ([`part_columns`](Self::part_columns)) on this thread and part 1's on
    /// the helper ([`helper::both`]), each straight into its columns of every row of `out`.
    fn matmul_split(&self, x: &[f32], out: &mut [f32], rows: usize) {
        let (k, n) = (self.k, self.n);
        let mid = self.part_columns(0, 2).end; // a panel boundary
        let (mine, theirs) = self.data.split_at(mid * k);
        let (mut left, mut right): (Vec<&mut [f32]>, Vec<&mut [f32]>) = out
            .chunks_exact_mut(n)
            .take(rows)
            .map(|row| row.split_at_mut(mid))
            .unzip();
        helper::both(
            || self.kernel_rows(x, mine, &mut left, mid),
            || self.kernel_rows(x, theirs, &mut right, n - mid),
        );
    }

    /// `out = x · M` over the columns of `panels`, leading panels of this matrix's packing
    /// (all of them, or the first ones: the other columns of `out` are not written), `out`
    /// rows `n` wide.
    fn kernel(&self, x: &[f32], panels: &[f32], out: &mut [f32], rows: usize, n: usize) {
        assert!(
            out.len() == rows * n && n > 0,
            "kernel arguments out of shape"
        );
        let mut out_rows: Vec<&mut [f32]> = out.chunks_exact_mut(n).collect();
        self.kernel_rows(x, panels, &mut out_rows, n);
    }

    /// [`kernel`](Self::kernel) with one output slice of `n` values per row (rows that are
    /// column ranges of a wider output, as the halves of a split write them).
    fn kernel_rows(&self, x: &[f32], panels: &[f32], out: &mut [&mut [f32]], n: usize) {
        let (k, p) = (self.k, self.isa.panel());
        // What every kernel relies on, checked here once (the public entries checked the
        // caller's slices; these hold for the splits of `matmul_split` too).
        assert!(
            x.len() == out.len() * k
                && out.iter().all(|row| row.len() == n)
                && panels.len().is_multiple_of(k * p)
                && panels.len() <= n.div_ceil(p) * k * p,
            "kernel arguments out of shape"
        );
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: x, every out row and panels were checked above (panels: whole
            // zero-padded [k, 32] panels, at most ⌈n/32⌉), and `with_isa` checked AVX-512F
            // support.
            Isa::Avx512 => unsafe { avx512::matmul(x, panels, out, k, n) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above with [k, 24] panels, and AVX2 + FMA support was checked.
            Isa::Avx2 => unsafe { avx2::matmul(x, panels, out, k, n) },
            _ => portable::matmul(x, panels, out, k, n),
        }
    }
}

/// Whether large products split over a helper thread in this process (two or more cores and
/// `MNEMO_KERNEL_THREADS` not 1; see [`PackedMatrix::matmul`]).
pub fn helper_thread() -> bool {
    Helper::get().is_some()
}

/// Run `f` with every split of this crate's work inside it (large products, windows, updates)
/// kept on the calling thread: for callers that already run one thread per core (the
/// Transformer backward's two batch halves), where the helper would only take turns with them.
/// Results are the same either way.
pub fn on_this_core<R>(f: impl FnOnce() -> R) -> R {
    helper::on_this_core(f)
}

/// Products with at least this many weights (`k·n`) split their column panels between the
/// calling thread and the [`Helper`] on the second core (smaller ones cost less than the
/// hand-off).
const SPLIT_MIN_WEIGHTS: usize = 256 * 256;

/// Run `mine` on this thread and `theirs` on the helper thread at once, or both here one after
/// the other when the helper is off (`MNEMO_KERNEL_THREADS=1`) or held by another thread;
/// returns when both are done. For callers that split work of their own into two halves that
/// write disjoint memory (the Transformer's attention splits its head rows): either way each
/// half computes the same, so results do not depend on whether the helper ran.
pub fn on_both_cores(mine: impl FnOnce(), theirs: impl FnOnce() + Send) {
    helper::both(mine, theirs)
}

/// `out = x · m` for row-major `m` (packs `m` first: for a matrix used once).
///
/// # Shapes
/// - x: `[rows, k]`, m: `[k, n]`, out: `[rows, n]`
///
/// # Panics
/// If a slice's length does not match its shape.
pub fn matmul_rows(x: &[f32], m: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    PackedMatrix::new(m, k, n).matmul(x, out, rows)
}
