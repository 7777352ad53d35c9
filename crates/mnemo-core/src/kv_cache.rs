//! A key/value cache for step-by-step decoding with a bounded span.
use burn::tensor::Tensor;

/// Keys and values of the most recent positions, at most `span - 1` of them, so that a new
/// position attends to itself plus the cache: exactly the span of the parallel pass.
///
/// The cache is rebuilt by concatenation at each step; it serves the baseline Transformer's
/// generation, whose cost is dominated by the attention itself.
#[derive(Debug, Clone)]
pub struct KvCache {
    keys: Option<Tensor<4>>,
    values: Option<Tensor<4>>,
    span: usize,
}

impl KvCache {
    /// An empty cache for attention span `span` (>= 1).
    pub fn new(span: usize) -> Self {
        assert!(span >= 1, "span must be at least 1");
        Self { keys: None, values: None, span }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.keys.as_ref().map_or(0, |k| k.dims()[2])
    }

    /// Whether the cache holds no position.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append one position; return the keys and values to attend over (cache + new) and the
    /// updated cache (trimmed to the last `span - 1` positions).
    ///
    /// # Shapes
    /// - k, v: `[B, H, 1, Dh]`
    /// - keys, values: `[B, H, n, Dh]` with `n = min(len + 1, span)`
    pub fn append(self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>, KvCache) {
        let keys = match self.keys {
            Some(old) => Tensor::cat(vec![old, k], 2),
            None => k,
        };
        let values = match self.values {
            Some(old) => Tensor::cat(vec![old, v], 2),
            None => v,
        };
        let n = keys.dims()[2];
        let keep = n.min(self.span - 1);
        let cache = KvCache {
            keys: (keep > 0).then(|| keys.clone().narrow(2, n - keep, keep)),
            values: (keep > 0).then(|| values.clone().narrow(2, n - keep, keep)),
            span: self.span,
        };
        (keys, values, cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_span_minus_one() {
        let device = mnemo_backend::test_device();
        let mut cache = KvCache::new(3);
        for step in 0..5 {
            let k = Tensor::<4>::full([1, 1, 1, 1], step as f32, &device);
            let (keys, _, next) = cache.append(k.clone(), k);
            let keys: Vec<f32> = keys.into_data().try_to_vec::<f32>().unwrap();
            let first = (step as i64 - 2).max(0) as f32;
            assert_eq!(keys, (first as i32..=step).map(|v| v as f32).collect::<Vec<_>>());
            cache = next;
            assert_eq!(cache.len(), (step + 1).min(2) as usize);
        }
    }
}
