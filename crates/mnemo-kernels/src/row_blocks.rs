//! The row blocking every SIMD `matmul` shares, written once for AVX2 and AVX-512.
//!
//! Rows are taken in blocks of at most the instruction set's block height; each block runs the
//! module's `block::<R>` kernel with its row count `R` as a constant, so the `R × panel`
//! accumulators stay in registers while `k` runs.

/// Defines `pub(crate) unsafe fn matmul(x, panels, out, k, n)` (`out`: one slice per row) in a
/// SIMD module that has `P` (columns per panel) and `unsafe fn block::<R>(x, panels, out, k, n)`:
/// `out = x · M` for
/// `M` packed in `[k, P]` panels, over blocks of at most `$max` rows (the listed heights, largest
/// first; a block of one row is the fallback).
///
/// `$features` are the `#[target_feature]`s of the generated function; `$doc` and `$safety`
/// name them in its documentation.
macro_rules! row_blocked_matmul {
    ($features:literal, $doc:literal, $safety:literal, [$max:literal $(, $r:literal)*]) => {
        #[doc = $doc]
        ///
        /// # Safety
        #[doc = $safety]
        /// `x` holds `out.len()·k` values, every row of `out` `n`, `panels` whole `[k, P]`
        /// panels, at most `⌈n/P⌉` (the first ones: only their columns of `out` are written).
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn matmul(
            x: &[f32],
            panels: &[f32],
            out: &mut [&mut [f32]],
            k: usize,
            n: usize,
        ) {
            debug_assert!(
                panels.len().is_multiple_of(k * P) && panels.len() <= n.div_ceil(P) * k * P
            );
            let rows = out.len();
            let mut r0 = 0;
            while r0 < rows {
                let r = (rows - r0).min($max);
                let xs = &x[r0 * k..(r0 + r) * k];
                let os = &mut out[r0..r0 + r];
                // SAFETY: the caller's guarantees, restricted to rows r0..r0+r.
                unsafe {
                    match r {
                        $max => block::<$max>(xs, panels, os, k, n),
                        $($r => block::<$r>(xs, panels, os, k, n),)*
                        _ => block::<1>(xs, panels, os, k, n),
                    }
                }
                r0 += r;
            }
        }
    };
}

pub(crate) use row_blocked_matmul;
