//! The model and batch sizes `mnemo bench` runs at (`--size`, `--layers`).
use serde_json::{Value, json};

/// Sizes of one `mnemo bench` run: the model (bytes in, bytes out) and the training batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BenchSize {
    /// Vocabulary V (bytes: 256).
    pub vocab: usize,
    /// Model width D.
    pub d_model: usize,
    /// Layers L.
    pub n_layers: usize,
    /// Heads H (head size D/H).
    pub n_heads: usize,
    /// Feed-forward width F.
    pub d_ff: usize,
    /// Training segment T (tokens per row per step).
    pub segment: usize,
    /// Attention span S: the Feedback memory and the Transformer's window.
    pub memory: usize,
    /// Training batch B (and the batch of `fb_forward_chunk1`).
    pub batch: usize,
}

/// The names `--size` accepts.
pub(crate) const SIZE_NAMES: &[&str] = &["peer", "gpu"];

impl BenchSize {
    /// The peer benchmark's config (`bench/peer_feedback.py`): D 256, 4 layers, 4 heads,
    /// FFN 1024, segment and memory 128, batch 8.
    pub const PEER: Self = Self {
        vocab: 256,
        d_model: 256,
        n_layers: 4,
        n_heads: 4,
        d_ff: 1024,
        segment: 128,
        memory: 128,
        batch: 8,
    };

    /// A size that gives a GPU enough work per kernel: D 512, 6 layers, 8 heads, FFN 2048,
    /// segment and memory 128, batch 64 (`scripts/bench-gpu.sh`).
    pub const GPU: Self = Self {
        vocab: 256,
        d_model: 512,
        n_layers: 6,
        n_heads: 8,
        d_ff: 2048,
        segment: 128,
        memory: 128,
        batch: 64,
    };

    /// The preset `name` (one of [`SIZE_NAMES`]) with `layers` layers if given; the error
    /// names `--size` or `--layers`.
    pub fn parse(name: &str, layers: Option<usize>) -> anyhow::Result<Self> {
        let mut size = match name {
            "peer" => Self::PEER,
            "gpu" => Self::GPU,
            other => anyhow::bail!(
                "--size: unknown size `{other}`; sizes: {}",
                SIZE_NAMES.join(", ")
            ),
        };
        if let Some(layers) = layers {
            anyhow::ensure!(layers >= 1, "--layers: needs at least 1 layer, got 0");
            size.n_layers = layers;
        }
        Ok(size)
    }

    /// The JSON `config` object of a bench document (as the peer writes it).
    pub fn to_json(self, lr: f64, seed: u64) -> Value {
        json!({
            "vocab": self.vocab, "d_model": self.d_model, "n_layers": self.n_layers,
            "n_heads": self.n_heads, "d_head": self.d_model / self.n_heads, "d_ff": self.d_ff,
            "segment_len": self.segment, "mem_len": self.memory, "batch": self.batch,
            "lr": lr, "seed": seed, "dropout": 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_name_their_flag() {
        assert_eq!(BenchSize::parse("peer", None).unwrap(), BenchSize::PEER);
        let gpu = BenchSize::parse("gpu", Some(3)).unwrap();
        assert_eq!((gpu.d_model, gpu.n_layers), (512, 3));
        let err = BenchSize::parse("huge", None).unwrap_err().to_string();
        assert!(err.starts_with("--size: unknown size `huge`"), "{err}");
        let err = BenchSize::parse("peer", Some(0)).unwrap_err().to_string();
        assert!(err.starts_with("--layers"), "{err}");
        for size in [BenchSize::PEER, BenchSize::GPU] {
            assert_eq!(size.d_model % size.n_heads, 0);
        }
    }
}
