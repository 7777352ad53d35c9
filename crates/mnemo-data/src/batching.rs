//! Stream batching for training with memory carried across segments.
//!
//! A [`LabelledStream`] is cut into `batch` contiguous rows of equal length (the remainder at
//! the end is dropped), and each row into segments of `segment_len` tokens (the last partial
//! segment is dropped). Segment `i` holds columns `[i * T, (i + 1) * T)` of every row, so row
//! `r` of segment `i + 1` continues exactly where row `r` of segment `i` ended: a model that
//! carries its memory from one segment to the next sees one continuous stream per row.
//!
//! For evaluation, [`StreamBatcher::with_tail`] also serves the last partial segment of each
//! row, so that every position of a row is scored (only the `len % batch` positions that do
//! not fill a row are dropped; none with one row).

use crate::{DataError, LabelledStream, NO_LABEL_ID};

/// Serves the segments of a stream laid out as `batch` contiguous rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBatcher {
    inputs: Vec<u32>,
    targets: Vec<u32>,
    batch: usize,
    row_len: usize,
    segment_len: usize,
    tail: bool,
}

/// One segment of a batch of rows.
///
/// # Shapes
/// - `inputs`, `targets`: `[batch, len]`, row-major (`inputs[r * len + t]` is row `r`,
///   position `t`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Input ids, `[batch, len]` row-major.
    pub inputs: Vec<u32>,
    /// Target ids, `[batch, len]` row-major; [`NO_LABEL_ID`] is not scored.
    pub targets: Vec<u32>,
    /// Number of rows.
    pub batch: usize,
    /// Tokens per row.
    pub len: usize,
}

impl Segment {
    /// Number of scored targets.
    pub fn scored_positions(&self) -> usize {
        self.targets.iter().filter(|&&t| t != NO_LABEL_ID).count()
    }
}

impl StreamBatcher {
    /// Lays `stream` out as `batch` rows of `stream.len() / batch` tokens.
    ///
    /// Fails if `batch` or `segment_len` is zero, if inputs and targets differ in length, or if
    /// a row would be shorter than one segment.
    pub fn new(
        stream: &LabelledStream,
        batch: usize,
        segment_len: usize,
    ) -> Result<Self, DataError> {
        if batch == 0 {
            return Err(DataError::InvalidArgument {
                name: "batch",
                reason: "must be at least 1, got 0".into(),
            });
        }
        if segment_len == 0 {
            return Err(DataError::InvalidArgument {
                name: "segment_len",
                reason: "must be at least 1, got 0".into(),
            });
        }
        if stream.inputs.len() != stream.targets.len() {
            return Err(DataError::LengthMismatch {
                inputs: stream.inputs.len(),
                targets: stream.targets.len(),
            });
        }
        let row_len = stream.len() / batch;
        if row_len < segment_len {
            return Err(DataError::StreamTooShort {
                len: stream.len(),
                batch,
                segment_len,
                needed: batch.saturating_mul(segment_len),
            });
        }
        let used = batch * row_len;
        Ok(Self {
            inputs: stream.inputs[..used].to_vec(),
            targets: stream.targets[..used].to_vec(),
            batch,
            row_len,
            segment_len,
            tail: false,
        })
    }

    /// Also serve the last, shorter segment of each row (columns `[k * T, row_len)` when
    /// `row_len` is not a multiple of `T`), so every position of every row is served.
    pub fn with_tail(self) -> Self {
        Self { tail: true, ..self }
    }

    /// Number of positions served over all segments: `batch * row_len` with
    /// [`StreamBatcher::with_tail`], else `batch * num_segments * segment_len`.
    pub fn served_positions(&self) -> usize {
        match self.tail {
            true => self.batch * self.row_len,
            false => self.batch * (self.row_len / self.segment_len) * self.segment_len,
        }
    }

    /// Number of rows.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Tokens per segment row.
    pub fn segment_len(&self) -> usize {
        self.segment_len
    }

    /// Tokens per row (the part beyond the last full segment is never served).
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// Number of segments per row: the full ones, plus a shorter last one with
    /// [`StreamBatcher::with_tail`] when `row_len` is not a multiple of the segment length.
    pub fn num_segments(&self) -> usize {
        match self.tail {
            true => self.row_len.div_ceil(self.segment_len),
            false => self.row_len / self.segment_len,
        }
    }

    /// Segment `index`: columns `[index * T, (index + 1) * T)` of every row (clipped to the row
    /// for the tail segment).
    ///
    /// # Shapes
    /// - returns a [`Segment`] of `[batch, segment_len]` (`[batch, row_len % segment_len]` for
    ///   the tail segment).
    ///
    /// # Panics
    /// If `index >= self.num_segments()`.
    pub fn segment(&self, index: usize) -> Segment {
        assert!(
            index < self.num_segments(),
            "segment {index} out of range: {} segments",
            self.num_segments()
        );
        let batch = self.batch;
        let len = self
            .segment_len
            .min(self.row_len - index * self.segment_len);
        let mut inputs = Vec::with_capacity(batch * len);
        let mut targets = Vec::with_capacity(batch * len);
        for row in 0..batch {
            let start = row * self.row_len + index * self.segment_len;
            inputs.extend_from_slice(&self.inputs[start..start + len]);
            targets.extend_from_slice(&self.targets[start..start + len]);
        }
        Segment {
            inputs,
            targets,
            batch,
            len,
        }
    }

    /// All segments in order.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = Segment> + '_ {
        (0..self.num_segments()).map(|i| self.segment(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream whose input at position `p` is `p` and target is `p + 1000`.
    fn counting(len: u32) -> LabelledStream {
        LabelledStream::new((0..len).collect(), (0..len).map(|p| p + 1000).collect()).unwrap()
    }

    #[test]
    fn shapes_and_counts() {
        // 103 tokens, 4 rows of 25 (3 dropped), segments of 6: 4 full, 1 token per row dropped.
        let batcher = StreamBatcher::new(&counting(103), 4, 6).unwrap();
        assert_eq!(batcher.row_len(), 25);
        assert_eq!(batcher.num_segments(), 4);
        let segment = batcher.segment(3);
        assert_eq!((segment.batch, segment.len), (4, 6));
        assert_eq!(segment.inputs.len(), 24);
        assert_eq!(segment.targets.len(), 24);
        assert_eq!(batcher.segments().len(), 4);
    }

    #[test]
    fn rows_are_contiguous_across_segments() {
        let batcher = StreamBatcher::new(&counting(103), 4, 6).unwrap();
        for row in 0..4 {
            let mut concatenated = Vec::new();
            for segment in batcher.segments() {
                let r = &segment.inputs[row * segment.len..(row + 1) * segment.len];
                let t = &segment.targets[row * segment.len..(row + 1) * segment.len];
                assert!(
                    r.iter().zip(t).all(|(&i, &t)| t == i + 1000),
                    "targets aligned"
                );
                concatenated.extend_from_slice(r);
            }
            let start = row as u32 * 25;
            assert_eq!(
                concatenated,
                (start..start + 24).collect::<Vec<_>>(),
                "row {row}"
            );
        }
        // Segment 1 of row 2 starts right after segment 0 of row 2 ended.
        let (s0, s1) = (batcher.segment(0), batcher.segment(1));
        assert_eq!(s1.inputs[2 * 6], s0.inputs[2 * 6 + 5] + 1);
    }

    #[test]
    fn tail_serves_every_position_of_every_row_in_order() {
        // 103 tokens, 4 rows of 25, segments of 6: 4 full + a tail of 1 per row.
        let batcher = StreamBatcher::new(&counting(103), 4, 6)
            .unwrap()
            .with_tail();
        assert_eq!(batcher.num_segments(), 5);
        assert_eq!(batcher.served_positions(), 100);
        let tail = batcher.segment(4);
        assert_eq!((tail.batch, tail.len), (4, 1));
        assert_eq!(tail.inputs, [24, 49, 74, 99]);
        assert_eq!(tail.targets, [1024, 1049, 1074, 1099]);
        for row in 0..4 {
            let served: Vec<u32> = batcher
                .segments()
                .flat_map(|s| s.inputs[row * s.len..(row + 1) * s.len].to_vec())
                .collect();
            let start = row as u32 * 25;
            assert_eq!(served, (start..start + 25).collect::<Vec<_>>());
        }
        // A row that is a multiple of the segment length has no tail.
        let even = StreamBatcher::new(&counting(48), 2, 6).unwrap().with_tail();
        assert_eq!((even.num_segments(), even.served_positions()), (4, 48));
        assert_eq!(
            StreamBatcher::new(&counting(103), 4, 6)
                .unwrap()
                .served_positions(),
            96
        );
    }

    #[test]
    fn too_short_and_zero_sizes_are_errors() {
        let err = StreamBatcher::new(&counting(23), 4, 6).unwrap_err();
        assert_eq!(
            err,
            DataError::StreamTooShort {
                len: 23,
                batch: 4,
                segment_len: 6,
                needed: 24
            }
        );
        assert!(StreamBatcher::new(&counting(24), 4, 6).is_ok());
        assert!(StreamBatcher::new(&counting(24), 0, 6).is_err());
        assert!(StreamBatcher::new(&counting(24), 4, 0).is_err());
        let bad = LabelledStream {
            inputs: vec![1; 30],
            targets: vec![0; 29],
        };
        assert!(matches!(
            StreamBatcher::new(&bad, 1, 5),
            Err(DataError::LengthMismatch { .. })
        ));
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn segment_past_the_end_panics() {
        StreamBatcher::new(&counting(24), 4, 6).unwrap().segment(1);
    }
}
