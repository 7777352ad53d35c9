//! Hand-written CPU kernels for products with few rows and many features.
//!
//! The Feedback Transformer is sequential over time: at every step each layer multiplies a
//! batch of `B` rows (8 in the benchmark) by its weight matrices, forward and backward. General
//! GEMM libraries are tuned for large square-ish products; on `[8, 256] · [256, 1024]` the
//! `gemm` crate behind burn's CPU backend reaches 18–35 GFLOP/s here, while the machine's FMA
//! units allow ~110 (`docs/performance.md`). [`matmul_rows`] keeps all rows of a block in
//! registers and streams each weight once, at 100–113 GFLOP/s on the same shapes.
//!
//! Dispatch happens at run time: AVX-512F, else AVX2 + FMA, else portable Rust (also the path
//! on non-x86 machines). All paths compute the same sums in the same order per output element
//! (`Σ_k` ascending, fused multiply-add where the CPU has it), and tests compare each path that
//! the machine supports with a naive `f64` reference.
//!
//! This is the only mnemo crate that uses `unsafe` (intrinsics and raw loads/stores); the
//! bounds every kernel relies on are checked once, in safe code, by [`matmul_rows`].
#![warn(missing_docs)]

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

/// An instruction set [`matmul_rows_with`] can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F: blocks of up to 8 rows × 32 columns held in 16 `zmm` accumulators.
    Avx512,
    /// AVX2 with FMA: blocks of up to 4 rows × 24 columns in 12 `ymm` accumulators.
    Avx2,
    /// Plain Rust loops (auto-vectorised for the build target).
    Portable,
}

impl Isa {
    /// The fastest instruction set this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Whether this CPU can run kernels for `self`.
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// `out = x · w` for row-major matrices, on the fastest instruction set of this CPU.
///
/// Meant for few rows (a batch of one time step) against a weight matrix; any `rows` works
/// (blocks of 8, or 4 on AVX2). `out` is overwritten.
///
/// # Shapes
/// - x: `[rows, k]`
/// - w: `[k, n]`
/// - out: `[rows, n]`
///
/// # Panics
/// If a slice's length does not match its shape.
pub fn matmul_rows(x: &[f32], w: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    matmul_rows_with(Isa::detect(), x, w, out, rows, k, n)
}

/// [`matmul_rows`] on a chosen instruction set (tests and benchmarks compare them).
///
/// # Shapes
/// As [`matmul_rows`].
///
/// # Panics
/// If a slice's length does not match its shape, or the CPU does not support `isa`.
pub fn matmul_rows_with(isa: Isa, x: &[f32], w: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    assert_eq!(x.len(), rows * k, "x must hold rows·k = {rows}·{k} values");
    assert_eq!(w.len(), k * n, "w must hold k·n = {k}·{n} values");
    assert_eq!(out.len(), rows * n, "out must hold rows·n = {rows}·{n} values");
    assert!(isa.supported(), "this CPU does not support {isa:?}");
    if rows == 0 || n == 0 {
        return;
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: lengths were checked above and AVX-512F support was checked by `supported`.
        Isa::Avx512 => unsafe { avx512::matmul_rows(x, w, out, rows, k, n) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: lengths were checked above and AVX2 + FMA support was checked by `supported`.
        Isa::Avx2 => unsafe { avx2::matmul_rows(x, w, out, rows, k, n) },
        _ => portable::matmul_rows(x, w, out, rows, k, n),
    }
}
