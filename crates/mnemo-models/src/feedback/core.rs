//! The Feedback core: the L layers, the memory projection(s) and the mixing weights, over input
//! vectors. The only place the Feedback step's equations live (DESIGN.md §4):
//!
//! ```text
//! h⁰_t = x_t                                                (an embedding, an observation, …)
//! hˡ_t = FFₗ(hookₗ(Attnₗ(hˡ⁻¹_t, K[t-S..t-1], V[t-S..t-1])))  l = 1..L  (memories only)
//! m_t  = Σ_{l=0..L} softmax(w)_l · hˡ_t                     w: L+1 logits, zero at init
//! K_t  = W_k norm(m_t),  V_t = W_v norm(m_t)                once per step if shared
//! y_t  = hᴸ_t
//! ```
//!
//! The hook is how a caller adds a sublayer between a layer's memory attention and its
//! feed-forward (the translation decoder's cross-attention); a language model or a policy
//! passes [`no_hook`]. [`FeedbackCore::forward`] runs a segment, [`FeedbackCore::step`] one
//! step; both drive the same [`FeedbackCore::step`] code over one [`FeedbackMemory`]. The exact
//! manual backward of [`super::backward`] recomputes this forward op by op and is tested equal.
//!
//! Size legend: B rows, T steps, S span, L layers, H heads, D d_model, Dh head size (D/H by
//! default).
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use mnemo_core::{Activation, AdaptiveSpanConfig, NormKind, NormPlacement};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::backward::StepProducts;
use super::host_memory::HostRead;
use super::host_step::{HostRows, Readout};
use super::layer::{
    FeedbackLayer, LayerLinears, MemoryProjection, ProjLinears, WindowRead, window_positions,
};
use super::memory::{FeedbackMemory, StepConstants, WindowView, project_newest};
use mnemo_core::{Norm, RelativePositions};

/// A sublayer inserted after layer `l`'s memory attention: `(l, h [B, 1, D]) -> [B, 1, D]`.
pub type LayerHook<'a> = &'a dyn Fn(usize, Tensor<3>) -> Tensor<3>;

/// What [`FeedbackCore`]'s step shows an observer of layer `layer` (analysis only).
pub(super) struct LayerVisit<'a> {
    pub layer: usize,
    /// The layer's input state `[B, 1, D]`, before its norm.
    pub attention_input: &'a Tensor<3>,
    /// The window the layer attended to.
    pub window: &'a WindowView,
    /// The layer's relative-position table `[1, 1, Dh, S]`.
    pub positions: &'a Tensor<4>,
    /// The layer's adaptive span mask `[1, H, 1, S]`, if it has one.
    pub span_mask: Option<&'a Tensor<4>>,
    /// The feed-forward block's input `[B, 1, D]` (after attention and the hook).
    pub ff_input: &'a Tensor<3>,
}

/// The hook that adds nothing.
pub fn no_hook() -> LayerHook<'static> {
    &|_, h| h
}

/// What a step's memory is made of (the paper's ablation, Fan et al. 2020, Table 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemorySource {
    /// The softmax-weighted mix of the input and every layer's output (learned weights).
    #[default]
    Mix,
    /// The top layer's output only (the mixing weights stay unused).
    Top,
}

/// Sizes of a [`FeedbackCore`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedbackCoreConfig {
    /// Width D of inputs, states and memories.
    pub d_model: usize,
    /// Layers L.
    pub n_layers: usize,
    /// Heads H.
    pub n_heads: usize,
    /// Feed-forward width.
    pub d_ff: usize,
    /// Memory span S.
    pub span: usize,
    /// Dropout on attention and feed-forward outputs.
    pub dropout: f64,
    /// LayerNorm or RMSNorm.
    pub norm: NormKind,
    /// Pre- or post-norm.
    pub placement: NormPlacement,
    /// One key/value projection shared by all layers (true) or one per layer.
    pub share_kv: bool,
    /// What a memory is made of: the mix of all layers or the top layer only.
    pub memory: MemorySource,
    /// Activation, biases, tying and head size (the official code's choices; defaults: mnemo's).
    pub options: FeedbackOptions,
    /// A learnt soft span per layer (and head) over the S slots (None: every slot); its
    /// `max_span` is S.
    pub adaptive_span: Option<AdaptiveSpanConfig>,
}

/// The choices of a [`FeedbackCore`] beyond its sizes that the official code
/// (facebookresearch/transformer-sequential) makes differently from mnemo's defaults; the
/// [`Default`] is mnemo's (GELU, biases, untied, `Dh = D/H`). See [`FeedbackConfig`]'s fields
/// of the same names.
///
/// [`FeedbackConfig`]: super::FeedbackConfig
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackOptions {
    /// The feed-forward activation.
    pub activation: Activation,
    /// Whether the query, key, value and attention output projections have biases.
    pub bias: bool,
    /// One relative-position table for all layers.
    pub tie_positions: bool,
    /// The memory is normalised by the norm of the layer(s) reading it (see
    /// [`FeedbackConfig::tie_norms`](super::FeedbackConfig::tie_norms)).
    pub tie_norms: bool,
    /// Head size Dh (0: D/H).
    pub d_head: usize,
}

impl Default for FeedbackOptions {
    fn default() -> Self {
        Self {
            activation: Activation::Gelu,
            bias: true,
            tie_positions: false,
            tie_norms: false,
            d_head: 0,
        }
    }
}

impl FeedbackOptions {
    /// Whether every option is mnemo's default.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl FeedbackCoreConfig {
    /// Head size Dh: `options.d_head`, or D/H when it is 0.
    pub fn d_head(&self) -> usize {
        mnemo_core::heads::head_size(self.d_model, self.n_heads, self.options.d_head)
    }
}

impl FeedbackCoreConfig {
    /// Build the core (its layers: [`init_layer`](Self::init_layer)). The per-step products run on the backend ([`StepProducts::Backend`])
    /// until [`FeedbackCore::with_step_products`] says otherwise.
    pub fn init(&self, device: &Device) -> FeedbackCore {
        let n_proj = if self.share_kv { 1 } else { self.n_layers };
        FeedbackCore {
            layers: (0..self.n_layers)
                .map(|_| self.init_layer(device))
                .collect(),
            memory_projections: (0..n_proj).map(|_| self.init_projection(device)).collect(),
            positions: self
                .options
                .tie_positions
                .then(|| self.init_positions(device)),
            mix: Initializer::Zeros.init([self.n_layers + 1], device),
            span: self.span,
            memory: self.memory,
            options: self.options,
            products: StepProducts::Backend,
        }
    }
}

/// The Feedback layers, memory projection(s) and mixing weights; see the [module docs](self).
#[derive(Module, Debug)]
pub struct FeedbackCore {
    /// The L layers.
    pub layers: Vec<FeedbackLayer>,
    /// One shared memory projection, or one per layer.
    pub memory_projections: Vec<MemoryProjection>,
    /// The one relative-position table of every layer (`tie_positions`), else `None` (each
    /// layer has its own).
    pub positions: Option<RelativePositions>,
    /// Mixing logits `w` over the input and the L layer outputs. Shape `[L+1]`.
    pub mix: Param<Tensor<1>>,
    /// Memory span S.
    pub span: usize,
    /// What a memory is made of; fixed by the config.
    #[module(skip)]
    pub memory: MemorySource,
    /// Activation, biases, tying, head size; fixed by the config.
    #[module(skip)]
    pub options: FeedbackOptions,
    /// Which code the manual forward/backward multiplies one step's rows with; fixed when the
    /// model is built for a device.
    #[module(skip)]
    pub products: StepProducts,
}

impl FeedbackCore {
    /// The same core with its per-step products computed by `products` (host kernels on CPU
    /// backends).
    pub fn with_step_products(mut self, products: StepProducts) -> Self {
        self.products = products;
        self
    }

    /// Width D.
    pub fn d_model(&self) -> usize {
        self.layers[0].query.weight.dims()[0]
    }

    /// The relative-position table layer `l` uses: its own, or the core's shared one.
    pub fn positions_of(&self, l: usize) -> &RelativePositions {
        self.layers[l]
            .positions
            .as_ref()
            .or(self.positions.as_ref())
            .expect("a layer without positions has the core's")
    }

    /// The norm memory projection `p` applies to memories: its own; with `tie_norms`, the
    /// attention norm of the layer reading it under pre-norm (layer `p`; the shared projection
    /// of `share_kv` uses layer 0's, see [`FeedbackConfig::tie_norms`]), none under post-norm
    /// (a post-norm layer's attention input is not normalised either).
    ///
    /// [`FeedbackConfig::tie_norms`]: super::FeedbackConfig::tie_norms
    pub fn memory_norm(&self, p: usize) -> Option<&Norm> {
        self.memory_projections[p].norm.as_ref().or_else(|| {
            let residual = &self.layers[p].attn_residual;
            residual.is_pre().then_some(&residual.norm)
        })
    }

    /// Index of the memory projection (and window) layer `l` reads.
    pub fn projection_of(&self, l: usize) -> usize {
        if self.memory_projections.len() == 1 {
            0
        } else {
            l
        }
    }

    /// `softmax(w)`, the weights of the input and the L layer outputs in a memory: the one
    /// definition of the mix. With [`MemorySource::Top`], the constant `[0, …, 0, 1]`.
    ///
    /// # Shapes
    /// - output: `[L+1]`
    pub fn mix_weights(&self) -> Tensor<1> {
        match self.memory {
            MemorySource::Mix => softmax(self.mix.val(), 0),
            MemorySource::Top => {
                let n = self.layers.len() + 1;
                let top: Vec<f32> = (0..n).map(|i| if i + 1 == n { 1.0 } else { 0.0 }).collect();
                Tensor::from_data(TensorData::new(top, [n]), &self.mix.val().device())
            }
        }
    }

    /// A memory holding `memories` as the window of the next step, with room for `room` steps.
    ///
    /// # Shapes
    /// - memories: `[B, S, D]` (detached: no gradient flows into them)
    ///
    /// # Panics
    /// If `memories` does not hold S memories (e.g. a state made before
    /// [`set_eval_span`](Self::set_eval_span)).
    pub fn memory(&self, memories: Tensor<3>, room: usize) -> FeedbackMemory {
        check_carried(&memories, self.span);
        // Memories no layer's adaptive span reaches are not projected.
        let projected = (0..self.memory_projections.len())
            .map(|p| project_newest(&memories, self.reach(p), |m| self.project_with(p, m, None)))
            .collect();
        FeedbackMemory::new(memories, projected, room)
    }

    /// How many of the newest window slots layer `l` reads: S, or fewer when its adaptive span
    /// trims its window.
    pub fn layer_width(&self, l: usize) -> usize {
        let s = self.span;
        let span = self.layers[l].adaptive_span.as_ref();
        span.map_or(s, |a| a.window_len().min(s))
    }

    /// How many of the newest window slots the layers reading projection `p` reach: the widest
    /// of their [`layer_width`](Self::layer_width)s.
    pub fn reach(&self, p: usize) -> usize {
        (0..self.layers.len())
            .filter(|&l| self.projection_of(l) == p)
            .map(|l| self.layer_width(l))
            .max()
            .unwrap_or(self.span)
    }

    /// The keys and values of `memories` `[B, n, D]` under every memory projection (on the
    /// host kernels when `packed` holds the weights).
    fn project(
        &self,
        memories: &Tensor<3>,
        packed: Option<&HostLinears>,
    ) -> Vec<(Tensor<4>, Tensor<4>)> {
        (0..self.memory_projections.len())
            .map(|p| self.project_with(p, memories.clone(), packed.map(|h| &h.projections[p])))
            .collect()
    }

    /// The keys and values of `memories` `[B, n, D]` under memory projection `p` (its norm
    /// included), `[B, H, n, Dh]` each; on the host kernels when `packed` holds its weights.
    fn project_with(
        &self,
        p: usize,
        memories: Tensor<3>,
        packed: Option<&ProjLinears>,
    ) -> (Tensor<4>, Tensor<4>) {
        self.memory_projections[p].forward_with(self.memory_norm(p), memories, packed)
    }

    /// Every linear map of a step packed for the host kernels, when the per-step products are
    /// the host's ([`StepProducts::Host`]) and the weights plain (inference and decoding: no
    /// gradient flows through the kernels); None otherwise.
    fn host_linears(&self) -> Option<Arc<HostLinears>> {
        self.host_products().then(|| {
            let host = StepProducts::Host;
            // Packing copies every weight (11 MB for the peer config, per decoding stream):
            // the upper half of the layers is packed on the second core meanwhile.
            let (lower, upper) = self.layers.split_at(self.layers.len() / 2);
            let (mut layers, mut upper_linears) = (Vec::new(), Vec::new());
            mnemo_kernels::on_both_cores(
                || layers = lower.iter().map(|l| LayerLinears::of(l, host)).collect(),
                || upper_linears = upper.iter().map(|l| LayerLinears::of(l, host)).collect(),
            );
            layers.append(&mut upper_linears);
            Arc::new(HostLinears {
                layers,
                projections: self
                    .memory_projections
                    .iter()
                    .map(|p| ProjLinears::of(p, host))
                    .collect(),
                positions: (0..self.layers.len())
                    .map(|l| super::host(self.positions_of(l).window(self.span)))
                    .collect(),
                rows: HostRows::of(self),
                readout: None,
            })
        })
    }

    /// The memory of `rows` fresh sequences: S zero memories, folded (see [`FeedbackMemory`]).
    pub fn fresh_memory(&self, rows: usize, device: &Device) -> FeedbackMemory {
        FeedbackMemory::folded(rows, self.d_model(), self.span, self.zero_kv(device))
    }

    /// Start the rows where `rows` is true afresh (their window becomes S zero memories, as
    /// in [`fresh_memory`](Self::fresh_memory)); the other rows keep theirs. For agents whose
    /// episodes end at different steps in different rows.
    pub fn reset_rows(&self, memory: &mut FeedbackMemory, rows: &[bool]) {
        if rows.contains(&true) {
            let device = self.mix.val().device();
            memory.reset_rows(rows, &self.zero_kv(&device));
        }
    }

    /// Per projection, the key and value of the zero memory. Shape `[1, H, 1, Dh]` each.
    fn zero_kv(&self, device: &Device) -> Vec<(Tensor<4>, Tensor<4>)> {
        self.project(&Tensor::<3>::zeros([1, 1, self.d_model()], device), None)
    }

    /// One step: every layer attends to the memory window, the new memory is mixed, projected
    /// and pushed.
    ///
    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: the top state `[B, 1, D]`
    pub fn step(&self, x: Tensor<3>, memory: &mut FeedbackMemory, hook: LayerHook) -> Tensor<3> {
        let constants = memory.constants(|| self.constants());
        self.step_with(x, memory, hook, &constants, &mut |_| {})
    }

    /// [`step`](Self::step) without a hook (a language model's decoding): on host rows when
    /// the weights are packed for the host kernels and every layer allows it
    /// ([`super::host_step`]: the same sums in another rounding order), else the tensor step.
    ///
    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: the top state `[B, 1, D]`
    pub fn step_unhooked(&self, x: Tensor<3>, memory: &mut FeedbackMemory) -> Tensor<3> {
        self.step_unhooked_read(x, memory).0
    }

    /// [`step_unhooked`](Self::step_unhooked), and the readout of the top state when the
    /// memory's constants carry one ([`constants_with_readout`](Self::constants_with_readout))
    /// and the step ran on host rows (else None: the caller maps the top state itself).
    ///
    /// # Shapes
    /// - x: `[B, 1, D]`
    /// - output: the top state `[B, 1, D]`, the readout `[B, 1, V]`
    pub(crate) fn step_unhooked_read(
        &self,
        x: Tensor<3>,
        memory: &mut FeedbackMemory,
    ) -> (Tensor<3>, Option<Tensor<3>>) {
        let constants = memory.constants(|| self.constants());
        match constants.host.as_deref() {
            Some(
                linears @ HostLinears {
                    rows: Some(rows), ..
                },
            ) => super::host_step::step(self, linears, rows, x, memory),
            _ => (
                self.step_with(x, memory, no_hook(), &constants, &mut |_| {}),
                None,
            ),
        }
    }

    /// [`constants`](Self::constants) whose host products also map the top state through
    /// `norm` (if any) and `map`: a language model's final norm and head, computed inside the
    /// host-row step (see [`step_unhooked_read`](Self::step_unhooked_read)).
    pub(crate) fn constants_with_readout(
        &self,
        norm: Option<&Norm>,
        map: &Linear,
    ) -> StepConstants {
        let mut constants = self.constants();
        if let Some(host) = constants.host.as_mut().and_then(Arc::get_mut) {
            host.readout = Some(Readout::of(norm, map));
        }
        constants
    }

    /// [`forward`](Self::forward) without a hook, each step through
    /// [`step_unhooked`](Self::step_unhooked): on host rows where
    /// [`steps_on_host_rows`](Self::steps_on_host_rows), else the same steps as `forward`.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: the top states `[B, T, D]`, and the memory after the last step
    pub fn forward_unhooked(
        &self,
        x: Tensor<3>,
        mut memory: FeedbackMemory,
    ) -> (Tensor<3>, FeedbackMemory) {
        let [_b, t_len, _d] = x.dims();
        let tops = (0..t_len)
            .map(|t| self.step_unhooked(x.clone().narrow(1, t, 1), &mut memory))
            .collect();
        (Tensor::cat(tops, 1), memory)
    }

    /// Whether [`step_unhooked`](Self::step_unhooked) runs on host rows: products on the host
    /// kernels, plain (non-autodiff) weights, every layer pre-norm without an adaptive span.
    pub fn steps_on_host_rows(&self) -> bool {
        self.host_products() && HostRows::apply(self)
    }

    /// Whether a step's linear maps multiply on the host kernels: products
    /// [`StepProducts::Host`] on plain (non-autodiff) weights.
    fn host_products(&self) -> bool {
        self.products == StepProducts::Host && !self.mix.val().is_autodiff()
    }

    /// Run a segment step by step, the memory written in place.
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - output: the top states `[B, T, D]`, and the memory after the last step
    pub fn forward(
        &self,
        x: Tensor<3>,
        mut memory: FeedbackMemory,
        hook: LayerHook,
    ) -> (Tensor<3>, FeedbackMemory) {
        let [_b, t_len, _d] = x.dims();
        let constants = memory.constants(|| self.constants());
        let tops = (0..t_len).map(|t| {
            self.step_with(
                x.clone().narrow(1, t, 1),
                &mut memory,
                hook,
                &constants,
                &mut |_| {},
            )
        });
        let y = Tensor::cat(tops.collect(), 1);
        (y, memory)
    }

    /// What every step computes from the weights alone, each layer's window trimmed to what
    /// its adaptive span can reach.
    pub(super) fn constants(&self) -> StepConstants {
        self.constants_with(true)
    }

    /// [`constants`](Self::constants), trimming or not (`trim = false`: every layer reads all
    /// S slots, its mask zero where it cannot reach).
    pub(super) fn constants_with(&self, trim: bool) -> StepConstants {
        let s = self.span;
        let mut positions = Vec::with_capacity(self.layers.len());
        let mut span_masks = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            let all = window_positions(self.positions_of(l)); // [1,1,Dh,S]
            let Some(span) = &layer.adaptive_span else {
                positions.push(all);
                span_masks.push(None);
                continue;
            };
            let w = if trim { self.layer_width(l) } else { s };
            let mask = span.mask(s); // [H',S]
            let heads = mask.dims()[0];
            positions.push(all.narrow(3, s - w, w));
            span_masks.push(Some(mask.narrow(1, s - w, w).reshape([1, heads, 1, w])));
        }
        StepConstants {
            positions,
            span_masks,
            mix: self.mix_weights().reshape([self.layers.len() + 1, 1, 1, 1]),
            host: self.host_linears(),
        }
    }

    /// One step; `observe` sees every layer's inputs on the way (analysis, [`super::inspect`]).
    pub(super) fn step_with(
        &self,
        x: Tensor<3>,
        memory: &mut FeedbackMemory,
        hook: LayerHook,
        constants: &StepConstants,
        observe: &mut dyn FnMut(LayerVisit),
    ) -> Tensor<3> {
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        let mut h = x;
        states.push(h.clone());
        // With host products and no adaptive span, the attention runs on the host windows.
        let host_linears = constants.host.as_deref();
        let host_attention =
            host_linears.filter(|_| constants.span_masks.iter().all(Option::is_none));
        if host_attention.is_some() {
            memory.sync_host();
        }
        // Views of the tensor buffers, for layers attending through burn's ops and for
        // `observe`; none where the buffers lag behind the host windows (a beam search, whose
        // steps read the host windows alone and observe nothing).
        let windows: Vec<_> = match memory.lagging() {
            true => Vec::new(),
            false => (0..self.memory_projections.len())
                .map(|p| memory.view(p))
                .collect(),
        };
        for (l, layer) in self.layers.iter().enumerate() {
            let positions = &constants.positions[l];
            let span_mask = constants.span_masks[l].as_ref();
            // The newest w slots (w < S when an adaptive span trims the window).
            let window = windows
                .get(self.projection_of(l))
                .map(|w| w.newest(positions.dims()[3]));
            let attention_input = h.clone();
            let packed = host_linears.map(|p| &p.layers[l]);
            let read = host_attention
                .zip(memory.host())
                .map(|(linears, memory)| HostRead {
                    memory,
                    projection: self.projection_of(l),
                    positions: &linears.positions[l],
                });
            let source = match (read, &window) {
                (Some(read), _) => WindowRead::Host(read),
                (None, Some(window)) => WindowRead::Tensors {
                    window,
                    positions,
                    span_mask,
                },
                (None, None) => unreachable!("lagging buffers come with host windows"),
            };
            let attended = layer.attend_memory_with(h, source, packed);
            h = hook(l, attended);
            if let Some(window) = &window {
                observe(LayerVisit {
                    layer: l,
                    attention_input: &attention_input,
                    window,
                    positions,
                    span_mask,
                    ff_input: &h,
                });
            }
            h = layer.feed_forward_with(h, packed);
            states.push(h.clone());
        }
        drop(windows); // views of the buffers: gone before the write below
        // m = Σ softmax(w)_l hˡ over the stacked states [L+1, B, 1, D].
        let mixed = (Tensor::stack::<4>(states, 0) * constants.mix.clone())
            .sum_dim(0)
            .squeeze_dim::<3>(0);
        let projected = self.project(&mixed, host_linears);
        memory.push(mixed, projected);
        h
    }
}

/// Every linear map of a step with its weights packed once for the host kernels (built with a
/// memory's [`StepConstants`], so once per decoding stream or segment).
#[derive(Debug)]
pub(crate) struct HostLinears {
    /// Per layer.
    pub(crate) layers: Vec<LayerLinears>,
    /// Per memory projection, key and value.
    pub(crate) projections: Vec<ProjLinears>,
    /// Per layer, its positions over the whole window `[S, Dh]` (slot j at distance S − j),
    /// for the host attention.
    pub(crate) positions: Vec<Vec<f32>>,
    /// What a step on host rows reads besides the products (None: a layer needs the tensor
    /// step; see [`HostRows::of`]).
    pub(crate) rows: Option<HostRows>,
    /// A map of the top state the host-row step computes too (a language model's final norm
    /// and head, [`FeedbackCore::constants_with_readout`]), or None.
    pub(crate) readout: Option<Readout>,
}

/// Panics (naming `memories`) unless `memories` `[B, S', D]` holds `span` memories.
pub(crate) fn check_carried(memories: &Tensor<3>, span: usize) {
    let carried = memories.dims()[1];
    assert_eq!(
        carried, span,
        "memories: {carried} carried memories for a core of span {span} (start a fresh state \
         after changing the span)"
    );
}
