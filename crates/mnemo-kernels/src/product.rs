//! General matrix products `A · B` of strided operands, for large products (the Transformer's
//! layers, the weight gradients) read where their operands lie.
//!
//! burn-flex multiplies with the `gemm` crate into an output it zero-fills first (a `memset` of
//! every product's output, 5–6 % of a Transformer training step) and can only be handed a tensor
//! it owns. [`product`] makes the same `gemm` call with the same arguments (so its results are
//! burn-flex's bit for bit), on operands borrowed in place, into an output that is only written.

use gemm::Parallelism;

/// A matrix operand read in place: element `(i, j)` is `data[offset + i·row_stride +
/// j·col_stride]` (a transposed view swaps the two strides).
#[derive(Debug, Clone, Copy)]
pub struct Operand<'a> {
    /// The buffer the matrix is a view of.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Elements between vertically neighbouring elements (≥ 0).
    pub row_stride: isize,
    /// Elements between horizontally neighbouring elements (≥ 0).
    pub col_stride: isize,
    /// Index in `data` of element `(0, 0)`.
    pub offset: usize,
}

impl Operand<'_> {
    /// A row-major `[rows, cols]` matrix filling `data`.
    ///
    /// # Panics
    /// If `data` does not hold `rows · cols` values.
    pub fn row_major(data: &[f32], rows: usize, cols: usize) -> Operand<'_> {
        assert_eq!(data.len(), rows * cols, "a [{rows}, {cols}] matrix");
        Operand {
            data,
            rows,
            cols,
            row_stride: cols as isize,
            col_stride: 1,
            offset: 0,
        }
    }

    /// Panics (naming `what`) unless every element lies inside `data`.
    fn check(&self, what: &str) {
        assert!(
            self.row_stride >= 0 && self.col_stride >= 0,
            "{what}: negative strides are not supported"
        );
        if self.rows > 0 && self.cols > 0 {
            let last = self.offset
                + (self.rows - 1) * self.row_stride as usize
                + (self.cols - 1) * self.col_stride as usize;
            assert!(
                last < self.data.len(),
                "{what}: element ({}, {}) at {last} lies outside a buffer of {}",
                self.rows - 1,
                self.cols - 1,
                self.data.len()
            );
        }
    }
}

/// Products with at least this many multiply-adds (`m·n·k`) run over rayon's pool (the pool
/// the caller runs in: one thread inside a one-thread pool), as burn-flex decides.
const PARALLEL_MIN: usize = 192 * 192 * 192;

/// `A · B`, row-major.
///
/// # Shapes
/// - a: `[m, k]`, b: `[k, n]`
/// - output: `[m, n]`
///
/// # Panics
/// If the inner sizes differ or an operand reaches outside its buffer.
pub fn product(a: Operand<'_>, b: Operand<'_>) -> Vec<f32> {
    assert_eq!(
        a.cols, b.rows,
        "product of [{}, {}] and [{}, {}]",
        a.rows, a.cols, b.rows, b.cols
    );
    a.check("left operand");
    b.check("right operand");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 || k == 0 {
        return vec![0.0; m * n];
    }
    let parallelism = match m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MIN {
        true => Parallelism::Rayon(0),
        false => Parallelism::None,
    };
    let mut out = Vec::<f32>::with_capacity(m * n);
    // SAFETY: `check` put every element (i, j) of both operands, at offset + i·rs + j·cs with
    // non-negative strides, inside its slice, so gemm's reads stay in bounds; the destination
    // is the `m·n` elements of `out`'s capacity, row-major (column stride 1, row stride n), and
    // with `read_dst` false gemm only writes it (every element once, k > 0), never reads it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr().add(a.offset),
            a.col_stride,
            a.row_stride,
            b.data.as_ptr().add(b.offset),
            b.col_stride,
            b.row_stride,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
        // SAFETY: gemm wrote all m·n elements above.
        out.set_len(m * n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn naive(a: &Operand<'_>, b: &Operand<'_>) -> Vec<f64> {
        let at = |o: &Operand<'_>, i: usize, j: usize| {
            o.data[o.offset + i * o.row_stride as usize + j * o.col_stride as usize] as f64
        };
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols).map(|p| at(a, i, p) * at(b, p, j)).sum();
            }
        }
        out
    }

    #[test]
    fn strided_products_match_the_definition() {
        // Small (one thread) and large (rayon) products; B read transposed and offset, as a
        // narrowed, transposed tensor view lies in its buffer.
        for (m, k, n) in [(3, 5, 7), (1, 1, 1), (200, 190, 210)] {
            let a_buf = values(m * k, 1);
            let b_t = values(3 + n * k, 2); // Bᵀ [n, k] after 3 other values
            let a = Operand::row_major(&a_buf, m, k);
            let b = Operand {
                data: &b_t,
                rows: k,
                cols: n,
                row_stride: 1,
                col_stride: k as isize,
                offset: 3,
            };
            let got = product(a, b);
            let want = naive(&a, &b);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (*g as f64 - w).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 1e-4 * k as f64,
                "[{m},{k}]·[{k},{n}]: max error {worst}"
            );
        }
    }

    #[test]
    fn empty_inner_size_gives_zeros() {
        let a = Operand::row_major(&[], 2, 0);
        let b = Operand::row_major(&[], 0, 3);
        assert_eq!(product(a, b), vec![0.0; 6]);
    }

    #[test]
    #[should_panic(expected = "right operand")]
    fn an_operand_outside_its_buffer_is_refused() {
        let data = values(6, 3);
        let b = Operand {
            data: &data,
            rows: 3,
            cols: 3,
            row_stride: 3,
            col_stride: 1,
            offset: 0,
        };
        product(Operand::row_major(&data, 2, 3), b);
    }
}
