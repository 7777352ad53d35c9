//! A segment cut into its episode pieces: every row is cut where an episode starts, and each
//! piece is laid out as a row of its own from step 0 (zeros after its end). A piece that starts
//! an episode starts from fresh (zero) memory, the row's first piece continues the memory
//! carried into the segment. A core without resets then computes over the pieces exactly what
//! the core with per-row resets computes over the rows (causal: the padding after a piece
//! changes nothing before it), which is how the Feedback core's manual backward, written for
//! segments without resets, serves RL.
//!
//! Size legend: B rows, T steps, F pieces (B ≤ F ≤ B·T), W floats per step.
use super::Carried;

/// One piece: steps `start .. start + len` of row `row`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    row: usize,
    start: usize,
    len: usize,
    /// Whether the piece starts an episode (fresh memory) rather than continuing the carried one.
    fresh: bool,
}

/// The episode pieces of a segment of B rows and T steps; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragments {
    pieces: Vec<Piece>,
    rows: usize,
    steps: usize,
}

impl Fragments {
    /// The pieces of a segment whose episode starts are `starts`.
    ///
    /// # Shapes
    /// - starts: `[B, T]` row-major
    pub fn of(starts: &[bool], rows: usize, steps: usize) -> Self {
        assert_eq!(
            starts.len(),
            rows * steps,
            "one start flag per row and step"
        );
        let mut pieces = Vec::new();
        for row in 0..rows {
            let flags = &starts[row * steps..(row + 1) * steps];
            let mut begin = 0;
            for t in 1..=steps {
                if t == steps || flags[t] {
                    pieces.push(Piece {
                        row,
                        start: begin,
                        len: t - begin,
                        fresh: flags[begin],
                    });
                    begin = t;
                }
            }
        }
        Self {
            pieces,
            rows,
            steps,
        }
    }

    /// Number of pieces F.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether there are no pieces (a segment of no rows).
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Per-step values of the rows laid out as the pieces, zeros after each piece's end.
    ///
    /// # Shapes
    /// - values: `[B, T, W]` row-major
    /// - output: `[F, T, W]` row-major
    pub fn spread(&self, values: &[f32], width: usize) -> Vec<f32> {
        assert_eq!(values.len(), self.rows * self.steps * width);
        let mut out = vec![0.0; self.len() * self.steps * width];
        for (f, p) in self.pieces.iter().enumerate() {
            let from = (p.row * self.steps + p.start) * width;
            let to = f * self.steps * width;
            out[to..to + p.len * width].copy_from_slice(&values[from..from + p.len * width]);
        }
        out
    }

    /// Where each row's step landed among the pieces' `F·T` steps: the index that gathers the
    /// pieces' per-step outputs back into the rows' order.
    ///
    /// # Shapes
    /// - output: `[B·T]` (row-major over rows and steps), values in `0 .. F·T`
    pub fn gather_index(&self) -> Vec<i64> {
        let mut index = vec![0i64; self.rows * self.steps];
        for (f, p) in self.pieces.iter().enumerate() {
            for i in 0..p.len {
                index[p.row * self.steps + p.start + i] = (f * self.steps + i) as i64;
            }
        }
        index
    }

    /// The memory each piece starts from: its row's carried memory for a piece that continues
    /// it, zeros for a piece that starts an episode.
    pub fn carried(&self, carried: &Carried) -> Carried {
        assert_eq!(carried.rows, self.rows, "one carried memory per row");
        let per_row = carried.steps * carried.width;
        let mut values = vec![0.0; self.len() * per_row];
        for (f, p) in self.pieces.iter().enumerate() {
            if !p.fresh {
                values[f * per_row..(f + 1) * per_row]
                    .copy_from_slice(&carried.values[p.row * per_row..(p.row + 1) * per_row]);
            }
        }
        Carried {
            rows: self.len(),
            steps: carried.steps,
            width: carried.width,
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row 0 never restarts, row 1 restarts at step 0 and 2: pieces (0, 0..4, carried),
    /// (1, 0..2, fresh), (1, 2..4, fresh).
    #[test]
    fn cuts_rows_at_episode_starts() {
        let starts = [false, false, false, false, true, false, true, false];
        let f = Fragments::of(&starts, 2, 4);
        assert_eq!(f.len(), 3);
        let values: Vec<f32> = (0..8).map(|v| v as f32).collect();
        #[rustfmt::skip]
        let want = [
            0.0, 1.0, 2.0, 3.0,
            4.0, 5.0, 0.0, 0.0,
            6.0, 7.0, 0.0, 0.0,
        ];
        assert_eq!(f.spread(&values, 1), want);
        assert_eq!(f.gather_index(), [0, 1, 2, 3, 4, 5, 8, 9]);
        let carried = Carried {
            rows: 2,
            steps: 1,
            width: 2,
            values: vec![1.0, 2.0, 3.0, 4.0],
        };
        assert_eq!(f.carried(&carried).values, [1.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
