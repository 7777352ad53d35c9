//! A model's parameters in layer groups, bottom to top, for discriminative learning rates and
//! gradual unfreezing (Howard & Ruder 2018, "Universal Language Model Fine-tuning for Text
//! Classification", §3.2–3.3; see [`OptimConfig`](crate::optim::OptimConfig)).
//!
//! Groups are found from parameter paths, so every model kind is covered without a list:
//! - group 0: the token embedding (a path with a component starting with `embed`);
//! - group `1 + i`: everything under `layers.i` (in an encoder–decoder, layer `i` of both
//!   stacks);
//! - the top group `L + 1`: everything else: the final norm and the output head, and
//!   parameters every layer shares (the Feedback memory's mixing weights and a shared K/V
//!   projection), which belong to no single layer.
use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Which layer group each parameter of a model belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerGroups {
    /// Group of each parameter, 0 = the bottom (embedding).
    group: HashMap<ParamId, usize>,
    /// Number of groups: layers + 2.
    count: usize,
}

impl LayerGroups {
    /// The groups of `model`'s parameters (see the [module docs](self)).
    pub fn of<M: Module>(model: &M) -> Self {
        let mut found = Vec::new();
        visit_params(model, |path, id, _| found.push((id, path.to_vec())));
        let layers = found
            .iter()
            .filter_map(|(_, path)| layer_index(path))
            .max()
            .map_or(0, |i| i + 1);
        let top = layers + 1;
        let group = found
            .into_iter()
            .map(|(id, path)| {
                let group = match layer_index(&path) {
                    Some(i) => 1 + i,
                    None if path.iter().any(|c| c.starts_with("embed")) => 0,
                    None => top,
                };
                (id, group)
            })
            .collect();
        Self {
            group,
            count: top + 1,
        }
    }

    /// Number of groups (the model's layers + 2).
    pub fn count(&self) -> usize {
        self.count
    }

    /// The group of parameter `id` (the top group for a parameter not seen).
    pub fn group_of(&self, id: &ParamId) -> usize {
        self.group.get(id).copied().unwrap_or(self.count - 1)
    }

    /// `grads` split by group: entry `g` holds the gradients of group `g`'s parameters of
    /// `model`, or is `None` when `keep[g]` is false (a frozen group: its gradients dropped).
    pub fn split<M: Module>(
        &self,
        model: &M,
        grads: GradientsParams,
        keep: &[bool],
    ) -> Vec<Option<GradientsParams>> {
        let outputs = keep.iter().map(|&k| k.then(GradientsParams::new)).collect();
        self.route(model, grads, outputs, |g| g)
    }

    /// `grads` without the gradients of the groups whose `keep` is false.
    pub fn retain<M: Module>(
        &self,
        model: &M,
        grads: GradientsParams,
        keep: &[bool],
    ) -> GradientsParams {
        let routed = self.route(model, grads, vec![Some(GradientsParams::new())], |g| {
            if keep[g] { 0 } else { usize::MAX }
        });
        routed.into_iter().flatten().next().unwrap_or_default()
    }

    /// Move each gradient of `grads` into `outputs[to(group)]`, dropping it where that entry
    /// is `None` or out of range.
    fn route<M: Module>(
        &self,
        model: &M,
        grads: GradientsParams,
        outputs: Vec<Option<GradientsParams>>,
        to: impl Fn(usize) -> usize,
    ) -> Vec<Option<GradientsParams>> {
        struct Route<'a, F> {
            groups: &'a LayerGroups,
            grads: GradientsParams,
            out: Vec<Option<GradientsParams>>,
            to: F,
        }
        impl<F: Fn(usize) -> usize> ModuleVisitor for Route<'_, F> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let index = (self.to)(self.groups.group_of(&param.id));
                if let Some(grad) = self.grads.remove::<D>(param.id)
                    && let Some(Some(out)) = self.out.get_mut(index)
                {
                    out.register(param.id, grad);
                }
            }
        }
        let mut route = Route {
            groups: self,
            grads,
            out: outputs,
            to,
        };
        model.visit(&mut route);
        route.out
    }
}

/// The index `i` of a path under `layers.i`, if it is in one.
fn layer_index(path: &[String]) -> Option<usize> {
    path.windows(2)
        .find(|w| w[0] == "layers")
        .and_then(|w| w[1].parse().ok())
}

/// Call `f(path, id, value)` for every float parameter of `model`, in visiting order, with its
/// module path and its value flattened (`value.dims()` is lost; use
/// [`visit_params_shaped`] for it).
pub fn visit_params<M: Module>(model: &M, mut f: impl FnMut(&[String], ParamId, Tensor<1>)) {
    visit_params_shaped(model, |path, id, value, _| f(path, id, value));
}

/// [`visit_params`], also passing each parameter's shape.
pub fn visit_params_shaped<M: Module>(
    model: &M,
    f: impl FnMut(&[String], ParamId, Tensor<1>, &[usize]),
) {
    struct Visit<F> {
        path: Vec<String>,
        f: F,
    }
    impl<F: FnMut(&[String], ParamId, Tensor<1>, &[usize])> ModuleVisitor for Visit<F> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let dims = value.dims();
            let n: usize = dims.iter().product();
            (self.f)(&self.path, param.id, value.reshape([n]), &dims);
        }
    }
    model.visit(&mut Visit {
        path: Vec::new(),
        f,
    });
}

/// The module path of every float parameter of `model`, joined with `.`, by id.
pub fn param_paths<M: Module>(model: &M) -> HashMap<ParamId, String> {
    let mut paths = HashMap::new();
    visit_params(model, |path, id, _| {
        paths.insert(id, path.join("."));
    });
    paths
}

/// Every float parameter of `model` as (path, layer group, values), in visiting order: what
/// a fine-tuning check compares between two runs.
pub fn params_by_group<M: Module>(model: &M) -> Vec<(String, usize, Vec<f32>)> {
    let groups = LayerGroups::of(model);
    let mut out = Vec::new();
    visit_params(model, |path, id, value| {
        let values = mnemo_core::host::to_vec(value);
        out.push((path.join("."), groups.group_of(&id), values));
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;
    use mnemo_models::ModelConfig;

    /// An embedding, two layers and a head, all `Linear` 4 → 4: four groups.
    #[derive(Module, Debug)]
    pub(crate) struct Stack {
        pub embedding: Linear,
        pub layers: Vec<Linear>,
        pub head: Linear,
    }

    impl Stack {
        /// `head(layers(embedding(x)))`.
        pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
            let x = self.embedding.forward(x);
            let x = self.layers.iter().fold(x, |x, l| l.forward(x).tanh());
            self.head.forward(x)
        }

        /// Every parameter as (path, group, values), in visiting order.
        pub fn host_params(&self) -> Vec<(String, usize, Vec<f32>)> {
            params_by_group(self)
        }
    }

    /// A [`Stack`] on `device`, seeded.
    pub(crate) fn three_layers(device: &Device) -> Stack {
        let linear = || LinearConfig::new(4, 4).init(device);
        mnemo_core::seeded::reinit(
            Stack {
                embedding: linear(),
                layers: vec![linear(), linear()],
                head: linear(),
            },
            11,
        )
    }

    #[test]
    fn split_and_retain_route_gradients_by_group() {
        let device = mnemo_backend::test_device().autodiff();
        let model = three_layers(&device);
        let groups = LayerGroups::of(&model);
        let grads = || {
            let x = mnemo_core::seeded::normal([3, 4], 1, &device);
            GradientsParams::from_grads(model.forward(x).sum().backward(), &model)
        };
        // Each Linear has a weight and a bias: two gradients per group.
        let parts = groups.split(&model, grads(), &[true, false, true, true]);
        let sizes: Vec<Option<usize>> = parts.iter().map(|p| p.as_ref().map(|p| p.len())).collect();
        assert_eq!(sizes, [Some(2), None, Some(2), Some(2)]);
        let kept = groups.retain(&model, grads(), &[false, true, false, true]);
        assert_eq!(kept.len(), 4);
        let head = model.head.weight.id;
        let embedding = model.embedding.weight.id;
        assert!(kept.get::<2>(head).is_some());
        assert!(kept.get::<2>(embedding).is_none());
    }

    /// Groups by path, over the parameters of a model of `config`.
    fn groups_by_path(config: &ModelConfig) -> (usize, Vec<(String, usize)>) {
        let device = mnemo_backend::test_device();
        let model = config.init(&device);
        let groups = LayerGroups::of(&model);
        let mut named: Vec<(String, usize)> = param_paths(&model)
            .into_iter()
            .map(|(id, path)| (path, groups.group_of(&id)))
            .collect();
        named.sort();
        (groups.count(), named)
    }

    #[test]
    fn embedding_layers_and_head_are_ordered_bottom_to_top() {
        for (kind, layers) in [("feedback", 2), ("transformer", 3)] {
            let config: ModelConfig = toml::from_str(&format!(
                "kind = \"{kind}\"\nvocab_size = 11\nd_model = 8\nn_layers = {layers}\n\
                 n_heads = 2\nd_ff = 16\nspan = 4\n"
            ))
            .unwrap();
            let (count, named) = groups_by_path(&config);
            assert_eq!(count, layers + 2, "{named:?}");
            for (path, group) in &named {
                let expected = if path.contains("embedding") {
                    0
                } else if let Some(i) = path
                    .split('.')
                    .collect::<Vec<_>>()
                    .windows(2)
                    .find(|w| w[0] == "layers")
                    .map(|w| w[1].parse::<usize>().unwrap())
                {
                    1 + i
                } else {
                    layers + 1
                };
                assert_eq!(*group, expected, "{path}");
            }
            // Every group holds something: the embedding, each layer, the head.
            for g in 0..count {
                assert!(named.iter().any(|(_, group)| *group == g), "group {g}");
            }
            assert!(
                named
                    .iter()
                    .any(|(p, g)| p.contains("head") && *g == layers + 1)
            );
        }
    }
}
