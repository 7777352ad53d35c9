//! Start a model from another run's weights: the first step of fine-tuning (Howard & Ruder
//! 2018, "Universal Language Model Fine-tuning for Text Classification": a pretrained language
//! model, then the target data).
//!
//! Parameters are paired by module path. Where the two vocabularies differ, a parameter whose
//! shape differs from the source's only along one axis of vocabulary size (the embedding
//! `[V, D]`, the output head `[D, V]` and its bias `[V]`) is copied token by token: the row of
//! every token both vocabularies hold comes from the source, the rows of new tokens keep the
//! target's fresh initialisation. Any other difference is an error naming the parameter.
use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};

use crate::layer_groups::visit_params_shaped;

/// How a transfer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transferred {
    /// Parameters copied whole.
    pub copied: usize,
    /// Parameters copied token by token (vocabulary-indexed).
    pub remapped: usize,
}

/// `target` with `source`'s weights (see the [module docs](self)).
///
/// `rows[j]` is the source index of target token `j` (`None`: a new token), and `source_vocab`
/// the source's vocabulary size; with equal vocabularies pass the identity.
pub fn transfer<M: Module>(
    source: &M,
    target: M,
    rows: &[Option<usize>],
    source_vocab: usize,
) -> Result<(M, Transferred), String> {
    let mut found = HashMap::new();
    visit_params_shaped(source, |path, _, value, dims| {
        found.insert(
            path.join("."),
            (dims.to_vec(), mnemo_core::host::to_vec(value)),
        );
    });
    let mut copy = Copy {
        source: found,
        rows,
        source_vocab,
        path: Vec::new(),
        done: Transferred::default(),
        error: None,
    };
    let target = target.map(&mut copy);
    match copy.error {
        Some(error) => Err(error),
        None => Ok((target, copy.done)),
    }
}

/// For each token of `target`, its index in `source` (`None` where `source` lacks it).
pub fn vocab_rows(source: &[String], target: &[String]) -> Vec<Option<usize>> {
    let index: HashMap<&str, usize> = source
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    target
        .iter()
        .map(|t| index.get(t.as_str()).copied())
        .collect()
}

/// The top-level fields in which two configs differ, except those in `ignore`, sorted.
pub fn config_differences<C: serde::Serialize>(a: &C, b: &C, ignore: &[&str]) -> Vec<String> {
    let as_map = |c: &C| match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (a, b) = (as_map(a), as_map(b));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !ignore.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// The mapper behind [`transfer`].
struct Copy<'a> {
    source: HashMap<String, (Vec<usize>, Vec<f32>)>,
    rows: &'a [Option<usize>],
    source_vocab: usize,
    path: Vec<String>,
    done: Transferred,
    error: Option<String>,
}

impl Copy<'_> {
    /// The target's new values for parameter `path` now holding `fresh` with shape `dims`.
    fn values(&mut self, path: &str, dims: &[usize], fresh: Vec<f32>) -> Result<Vec<f32>, String> {
        let Some((source_dims, source)) = self.source.get(path) else {
            return Err(format!("`{path}` is not in the source model"));
        };
        if source_dims == dims {
            self.done.copied += 1;
            return Ok(source.clone());
        }
        let differing: Vec<usize> = (0..dims.len())
            .filter(|&k| source_dims.get(k) != Some(&dims[k]))
            .collect();
        let axis = match differing.as_slice() {
            [k] if source_dims.len() == dims.len()
                && source_dims[*k] == self.source_vocab
                && dims[*k] == self.rows.len() =>
            {
                *k
            }
            _ => {
                return Err(format!(
                    "`{path}` has shape {source_dims:?} in the source model and {dims:?} here"
                ));
            }
        };
        let outer: usize = dims[..axis].iter().product();
        let inner: usize = dims[axis + 1..].iter().product();
        let (old, new) = (self.source_vocab, self.rows.len());
        let mut out = fresh;
        for o in 0..outer {
            for (j, row) in self.rows.iter().enumerate() {
                if let Some(i) = row {
                    let to = (o * new + j) * inner;
                    let from = (o * old + i) * inner;
                    out[to..to + inner].copy_from_slice(&source[from..from + inner]);
                }
            }
        }
        self.done.remapped += 1;
        Ok(out)
    }
}

impl ModuleMapper for Copy<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let path = self.path.join(".");
        let mut error = None;
        let param = param.map(|old| {
            let dims = old.dims();
            let fresh = mnemo_core::host::to_vec(old.clone());
            match self.values(&path, &dims, fresh) {
                Ok(values) => {
                    let data = TensorData::new(values, dims);
                    Tensor::<D>::from_data(data, (&old.device(), old.dtype()))
                        .set_require_grad(old.is_require_grad())
                }
                Err(e) => {
                    error = Some(e);
                    old
                }
            }
        });
        self.error = error;
        param
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct Lm {
        embedding: Embedding,
        head: Linear,
    }

    fn lm(vocab: usize, seed: u64) -> Lm {
        let device = mnemo_backend::test_device();
        mnemo_core::seeded::reinit(
            Lm {
                embedding: EmbeddingConfig::new(vocab, 3).init(&device),
                head: LinearConfig::new(3, vocab).init(&device),
            },
            seed,
        )
    }

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        mnemo_core::host::to_vec(t)
    }

    #[test]
    fn shared_tokens_keep_their_rows_and_new_ones_stay_fresh() {
        let old_tokens: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let new_tokens: Vec<String> = ["c", "x", "a", "b"].map(String::from).to_vec();
        let rows = vocab_rows(&old_tokens, &new_tokens);
        assert_eq!(rows, [Some(2), None, Some(0), Some(1)]);
        let (source, target) = (lm(3, 1), lm(4, 2));
        let fresh_emb = host(target.embedding.weight.val());
        let (moved, done) = transfer(&source, target, &rows, 3).unwrap();
        assert_eq!(
            done,
            Transferred {
                copied: 0,
                remapped: 3
            }
        );
        let (src_emb, emb) = (
            host(source.embedding.weight.val()),
            host(moved.embedding.weight.val()),
        );
        // Embedding [V, 3]: row j of the target is row rows[j] of the source.
        for (j, row) in rows.iter().enumerate() {
            let got = &emb[j * 3..j * 3 + 3];
            match row {
                Some(i) => assert_eq!(got, &src_emb[i * 3..i * 3 + 3]),
                None => assert_eq!(got, &fresh_emb[j * 3..j * 3 + 3]),
            }
        }
        // Head weight [3, V] (columns) and bias [V].
        let (src_w, w) = (
            host(source.head.weight.val()),
            host(moved.head.weight.val()),
        );
        for d in 0..3 {
            assert_eq!(w[d * 4 + 2], src_w[d * 3]);
            assert_eq!(w[d * 4], src_w[d * 3 + 2]);
        }
        let src_b = host(source.head.bias.as_ref().unwrap().val());
        let b = host(moved.head.bias.as_ref().unwrap().val());
        assert_eq!([b[0], b[2], b[3]], [src_b[2], src_b[0], src_b[1]]);
    }

    #[test]
    fn config_differences_name_fields_except_ignored() {
        let a =
            serde_json::json!({"kind": "feedback", "d_model": 32, "dropout": 0.1, "vocab_size": 9});
        let b = serde_json::json!({"kind": "feedback", "d_model": 64, "dropout": 0.0, "span": 8});
        assert_eq!(
            config_differences(&a, &b, &["dropout", "vocab_size"]),
            ["d_model", "span"]
        );
        assert!(config_differences(&a, &a, &[]).is_empty());
    }

    #[test]
    fn equal_vocabularies_copy_everything_and_other_shapes_are_named() {
        let rows: Vec<Option<usize>> = (0..3).map(Some).collect();
        let (moved, done) = transfer(&lm(3, 1), lm(3, 2), &rows, 3).unwrap();
        assert_eq!(done.copied, 3);
        assert_eq!(
            host(moved.head.weight.val()),
            host(lm(3, 1).head.weight.val())
        );
        // A wider model is not a vocabulary change.
        let device = mnemo_backend::test_device();
        let wide = Lm {
            embedding: EmbeddingConfig::new(3, 5).init(&device),
            head: LinearConfig::new(5, 3).init(&device),
        };
        let err = transfer(&lm(3, 1), wide, &rows, 3).unwrap_err();
        assert!(
            err.contains("`embedding.weight`") && err.contains("[3, 3]"),
            "{err}"
        );
    }
}
