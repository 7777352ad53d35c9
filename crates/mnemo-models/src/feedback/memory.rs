//! The Feedback memory: the keys and values of the S memories a step attends to, in one
//! preallocated buffer per projection that steps write in place.
//!
//! One type serves every caller of [`FeedbackCore`](super::FeedbackCore): a training segment
//! (the S carried memories, then room for the segment's T steps: step t reads slots
//! `t .. t+S` and writes slot `S+t`, never a copy), step-by-step generation of the language
//! model (the same buffer; when it is full the live S slots move to the front once, one copy
//! every few steps instead of a concatenation per step), and the decoder's beam search (rows
//! reordered with [`select`](FeedbackMemory::select)).
//!
//! **Folded zero start.** A fresh sequence starts from S zero memories, whose keys
//! `k₀ = W_k norm(0)` and values `v₀` are all equal; they differ only in their relative
//! positions. A memory built with [`FeedbackMemory::folded`] stores only the steps decoded so far
//! and keeps `(k₀, v₀)` once: the window is `[S − n zero memories, n stored]`, attended exactly by
//! [`attend_window`](super::layer::attend_window). Reading and reordering then cost the decoded
//! steps only.
//!
//! **Host layout.** A `[B, H, slots, Dh]` buffer is, row-major, the `[B·H, slots, Dh]` layout the
//! CPU kernels (`mnemo_kernels::Window`) read; [`host_buffers`](FeedbackMemory::host_buffers)
//! hands it over as host vectors.
//!
//! Size legend: B rows, H heads, S span, Dh head size, D = H·Dh, P projections.
use burn::tensor::{Bool, Int, Tensor, TensorData};
use std::sync::Arc;

use super::core::HostLinears;
use super::host;
use super::host_memory::{FoldedStart, HostMemory};
use mnemo_kernels::WindowShape;

/// Slots a folded memory allocates first (it grows by doubling up to `2·S`).
const INITIAL_SLOTS: usize = 32;

/// What one layer reads at a step: the S memories before it, oldest first.
#[derive(Debug, Clone)]
pub struct WindowView {
    /// Keys of the stored slots (None when all S are folded zeros). Shape `[B, H, n, Dh]`.
    pub keys: Option<Tensor<4>>,
    /// Values of the stored slots. Shape `[B, H, n, Dh]`.
    pub values: Option<Tensor<4>>,
    /// The zero memory's key and value, when the window starts with folded zeros. Shape
    /// `[1, H, 1, Dh]` each.
    pub zero: Option<(Tensor<4>, Tensor<4>)>,
    /// How many of the S slots (the oldest) are folded zero memories: `S − n`.
    pub folded: usize,
}

impl WindowView {
    /// The newest `w` of the window's slots (all of them when `w` is not smaller): what a
    /// layer whose adaptive span cannot reach further reads.
    ///
    /// # Panics
    /// If `w` is 0.
    pub fn newest(&self, w: usize) -> WindowView {
        assert!(w > 0, "a window keeps at least one slot");
        let stored = self.keys.as_ref().map_or(0, |k| k.dims()[2]);
        if w >= stored + self.folded {
            return self.clone();
        }
        if w <= stored {
            let skip = stored - w;
            let newest = |x: &Option<Tensor<4>>| x.clone().map(|x| x.narrow(2, skip, w));
            return WindowView {
                keys: newest(&self.keys),
                values: newest(&self.values),
                zero: None,
                folded: 0,
            };
        }
        WindowView {
            folded: w - stored,
            ..self.clone()
        }
    }
}

/// The keys and values of carried `memories` of which layers read only the newest `reach`
/// (adaptive spans trim their windows): those are projected by `project`, the older slots
/// hold zeros that no layer attends.
///
/// # Shapes
/// - memories: `[B, S, D]`
/// - project: `[B, n, D] -> ([B, H, n, Dh], [B, H, n, Dh])`
/// - output: `[B, H, S, Dh]` each
pub(crate) fn project_newest(
    memories: &Tensor<3>,
    reach: usize,
    project: impl FnOnce(Tensor<3>) -> (Tensor<4>, Tensor<4>),
) -> (Tensor<4>, Tensor<4>) {
    let s = memories.dims()[1];
    if reach >= s {
        return project(memories.clone());
    }
    let (k, v) = project(memories.clone().narrow(1, s - reach, reach));
    let pad = |x: Tensor<4>| {
        let [b, h, _, dh] = x.dims();
        Tensor::cat(
            vec![Tensor::zeros([b, h, s - reach, dh], &x.device()), x],
            2,
        )
    };
    (pad(k), pad(v))
}

/// Keys and values (per projection) and memory vectors of a stream; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct FeedbackMemory {
    /// Per projection, keys. Shape `[B, H, slots, Dh]`.
    keys: Vec<Tensor<4>>,
    /// Per projection, values. Shape `[B, H, slots, Dh]`.
    values: Vec<Tensor<4>>,
    /// The memory vectors themselves (detached), for the state carried to the next segment.
    /// Shape `[B, slots, D]`.
    vectors: Tensor<3>,
    /// Per projection, the folded zero memory's key and value (`[1, H, 1, Dh]`).
    zero: Option<Vec<(Tensor<4>, Tensor<4>)>>,
    /// First stored slot of the window.
    start: usize,
    /// Stored slots in the window (`S` unless zeros are folded).
    stored: usize,
    /// Span S.
    span: usize,
    /// Most slots the buffers may grow to before the live window moves to the front.
    max_slots: usize,
    /// What every step of this memory computes from the weights alone (the layers' window
    /// positions, the mixing weights), computed at the first step: a memory holds keys and
    /// values projected with the weights of its steps, so it never outlives them.
    constants: Option<StepConstants>,
    /// The windows on the host, for the CPU kernels' attention (see
    /// [`sync_host`](Self::sync_host)); reordered with the rows, dropped when rows are reset.
    host: Option<HostMemory>,
    /// Whether `keys` and `values` lag behind the host windows: a beam search's reorders
    /// ([`select_rows_for_search`](Self::select_rows_for_search)) and the steps after them went
    /// to the host windows alone, which are all its steps read. Reads of the tensors rebuild
    /// them from the host.
    lagging: bool,
}

/// Per-step inputs that depend on the weights only. See [`FeedbackMemory::constants`].
#[derive(Debug, Clone)]
pub struct StepConstants {
    /// Per layer, the window's position vectors ready for `q · Pᵀ`. Shape `[1, 1, Dh, w]`:
    /// the newest w ≤ S slots the layer reads (w < S when an adaptive span trims its window).
    pub positions: Vec<Tensor<4>>,
    /// Per layer, its adaptive span's mask over those w slots (None without one). Shape
    /// `[1, H, 1, w]` (`[1, 1, 1, w]` with one span per layer).
    pub span_masks: Vec<Option<Tensor<4>>>,
    /// `softmax(w)`, shaped to weight a stack of the L+1 states. Shape `[L+1, 1, 1, 1]`.
    pub mix: Tensor<4>,
    /// The step's linear maps packed for the host kernels (host products on plain weights),
    /// or None: burn's products.
    pub(crate) host: Option<Arc<HostLinears>>,
}

impl FeedbackMemory {
    /// A memory whose window holds `memories` (all S slots stored) and their keys/values, with
    /// room for `room` more steps before the first move to the front.
    ///
    /// # Shapes
    /// - memories: `[B, S, D]`
    /// - projected: per projection, keys and values `[B, H, S, Dh]`
    pub fn new(memories: Tensor<3>, projected: Vec<(Tensor<4>, Tensor<4>)>, room: usize) -> Self {
        let [_, span, _] = memories.dims();
        let room = room.max(1);
        let grow4 = |x: Tensor<4>| {
            let [b, h, _, dh] = x.dims();
            let pad = Tensor::zeros([b, h, room, dh], &x.device());
            Tensor::cat(vec![x, pad], 2)
        };
        let (keys, values) = projected
            .into_iter()
            .map(|(k, v)| (grow4(k), grow4(v)))
            .unzip();
        let [b, _, d] = memories.dims();
        let pad = Tensor::zeros([b, room, d], &memories.device());
        let vectors = Tensor::cat(vec![memories.detach(), pad], 1);
        let max_slots = (span + room).max(2 * span);
        Self {
            keys,
            values,
            vectors,
            zero: None,
            start: 0,
            stored: span,
            span,
            max_slots,
            constants: None,
            host: None,
            lagging: false,
        }
    }

    /// A fresh memory of `rows` sequences: S zero memories, folded (nothing stored yet).
    ///
    /// # Shapes
    /// - zero: per projection, the key and value of the zero memory `[1, H, 1, Dh]`
    pub fn folded(
        rows: usize,
        d_model: usize,
        span: usize,
        zero: Vec<(Tensor<4>, Tensor<4>)>,
    ) -> Self {
        let device = zero[0].0.device();
        let empty4 = |x: &Tensor<4>| {
            let [_, h, _, dh] = x.dims();
            Tensor::<4>::zeros([rows, h, 0, dh], &device)
        };
        let (keys, values) = zero.iter().map(|(k, v)| (empty4(k), empty4(v))).unzip();
        Self {
            keys,
            values,
            vectors: Tensor::zeros([rows, 0, d_model], &device),
            zero: Some(zero),
            start: 0,
            stored: 0,
            span,
            max_slots: 2 * span,
            constants: None,
            host: None,
            lagging: false,
        }
    }

    /// The span S.
    pub fn span(&self) -> usize {
        self.span
    }

    /// Number of rows B.
    pub fn rows(&self) -> usize {
        self.vectors.dims()[0]
    }

    /// What a layer reading projection `p` attends to at the next step (views of the buffers:
    /// drop them before [`push`](Self::push), or its write copies the buffer).
    pub fn view(&self, p: usize) -> WindowView {
        let range = self.start..self.start + self.stored;
        let stored = self.stored > 0;
        let (keys, values) = match self.lagging {
            true => self.window_from_host(p),
            false => (
                self.keys[p].clone().slice_dim(2, range.clone()),
                self.values[p].clone().slice_dim(2, range),
            ),
        };
        WindowView {
            keys: stored.then_some(keys),
            values: stored.then_some(values),
            zero: self.zero.as_ref().map(|z| z[p].clone()),
            folded: self.span - self.stored,
        }
    }

    /// Append one step: its memory vector and, per projection, its key and value. The oldest
    /// memory leaves the window.
    ///
    /// # Shapes
    /// - memory: `[B, 1, D]`
    /// - projected: per projection `[B, H, 1, Dh]` each
    pub fn push(&mut self, memory: Tensor<3>, projected: Vec<(Tensor<4>, Tensor<4>)>) {
        let rows: Vec<_> = match self.host {
            Some(_) => projected
                .iter()
                .map(|(k, v)| (host(k.clone()), host(v.clone())))
                .collect(),
            None => Vec::new(),
        };
        self.push_rows(memory, projected, &rows);
    }

    /// [`push`](Self::push) given the keys and values also as host rows (`[B·H, Dh]` each, the
    /// same values), which the host windows take as they are.
    pub(crate) fn push_rows(
        &mut self,
        memory: Tensor<3>,
        projected: Vec<(Tensor<4>, Tensor<4>)>,
        rows: &[(Vec<f32>, Vec<f32>)],
    ) {
        if let Some(host_memory) = &mut self.host {
            host_memory.push(rows);
        }
        if self.start + self.stored == self.slots() {
            self.make_room();
        }
        let slot = self.start + self.stored;
        // Lagging tensors are rebuilt from the host windows when read: no write here.
        if !self.lagging {
            let tensors = self.keys.iter_mut().zip(self.values.iter_mut());
            for ((kb, vb), (k, v)) in tensors.zip(projected) {
                let r = ranges4(kb, slot..slot + 1);
                kb.inplace(|buf| buf.slice_assign(r, k));
                let r = ranges4(vb, slot..slot + 1);
                vb.inplace(|buf| buf.slice_assign(r, v));
            }
        }
        let [b, _, d] = self.vectors.dims();
        self.vectors
            .inplace(|buf| buf.slice_assign([0..b, slot..slot + 1, 0..d], memory.detach()));
        if self.stored == self.span {
            self.start += 1;
        } else {
            self.stored += 1;
        }
    }

    /// The S memory vectors of the window, oldest first (folded zeros written out), detached:
    /// the state a segment carries to the next.
    ///
    /// # Shapes
    /// - output: `[B, S, D]`
    pub fn memories(&self) -> Tensor<3> {
        let live = self
            .vectors
            .clone()
            .slice_dim(1, self.start..self.start + self.stored);
        match self.span - self.stored {
            0 => live,
            n => {
                let [b, _, d] = live.dims();
                Tensor::cat(vec![Tensor::zeros([b, n, d], &live.device()), live], 1)
            }
        }
    }

    /// The step constants of this memory, computed by `compute` at the first call.
    pub fn constants(&mut self, compute: impl FnOnce() -> StepConstants) -> StepConstants {
        self.constants.get_or_insert_with(compute).clone()
    }

    /// Compute the step constants with `compute` unless they are there (the first step's
    /// caller chooses them; [`constants`](Self::constants) then returns them).
    pub(crate) fn init_constants(&mut self, compute: impl FnOnce() -> StepConstants) {
        self.constants.get_or_insert_with(compute);
    }

    /// Whether this memory's steps multiply on the host kernels: its constants are computed
    /// (a step ran) with the core's products [`StepProducts::Host`](crate::StepProducts::Host)
    /// on plain (non-autodiff) weights.
    pub fn steps_on_host(&self) -> bool {
        self.constants.as_ref().is_some_and(|c| c.host.is_some())
    }

    /// Whether this memory's unhooked steps run on host rows
    /// ([`FeedbackCore::step_unhooked`](super::FeedbackCore::step_unhooked)): its steps are on
    /// the host kernels and every layer of the core allows host rows.
    pub fn steps_on_host_rows(&self) -> bool {
        self.constants
            .as_ref()
            .and_then(|c| c.host.as_ref())
            .is_some_and(|h| h.rows.is_some())
    }

    /// Copy the windows to the host for the CPU kernels' attention, unless a copy is there
    /// already (kept up to date by [`push`](Self::push) from then on).
    pub(crate) fn sync_host(&mut self) {
        if self.host.is_some() {
            return;
        }
        let [b, heads, _, dh] = self.keys[0].dims();
        let stored = (0..self.keys.len())
            .map(|p| {
                let view = self.view(p);
                let host_or_empty = |x: Option<Tensor<4>>| x.map(host).unwrap_or_default();
                (host_or_empty(view.keys), host_or_empty(view.values))
            })
            .collect();
        let folded = self.zero.as_ref().map(|zero| FoldedStart {
            count: self.span - self.stored,
            zero: zero
                .iter()
                .map(|(k, v)| (host(k.clone()), host(v.clone())))
                .collect(),
        });
        let shape = WindowShape {
            rows: b * heads,
            slots: 2 * self.span,
            span: self.span,
            dh,
        };
        self.host = Some(HostMemory::new(stored, shape, folded));
    }

    /// The windows on the host, if [`sync_host`](Self::sync_host) made them.
    pub(crate) fn host(&self) -> Option<&HostMemory> {
        self.host.as_ref()
    }

    /// Keep the rows `rows`, in that order (beam search); the zero memory is shared by all rows.
    ///
    /// # Shapes
    /// - rows: `[B']`, indices into `0..B`
    pub fn select(&mut self, rows: &Tensor<1, Int>) {
        let picked: Vec<usize> = match self.host {
            Some(_) => crate::seq2seq::int_vec(rows.clone())
                .into_iter()
                .map(|r| r as usize)
                .collect(),
            None => Vec::new(),
        };
        self.select_rows(&picked, rows);
    }

    /// [`select`](Self::select) given the rows also as host indices (`picked`; read only where
    /// the host windows are reordered too).
    ///
    /// # Shapes
    /// - picked: `[B']`; rows: `[B']`, the same indices
    pub(crate) fn select_rows(&mut self, picked: &[usize], rows: &Tensor<1, Int>) {
        self.reorder(picked, rows);
        self.catch_up();
    }

    /// [`select_rows`](Self::select_rows) for a beam search, whose steps read the host windows
    /// alone: where there are host windows, the key and value tensors are left behind (see
    /// `lagging`) instead of gathered at every reorder.
    pub(crate) fn select_rows_for_search(&mut self, picked: &[usize], rows: &Tensor<1, Int>) {
        self.reorder(picked, rows);
    }

    /// Reorder the host windows and the memory vectors, and the key and value tensors unless
    /// there are host windows (they lag behind from then on).
    fn reorder(&mut self, picked: &[usize], rows: &Tensor<1, Int>) {
        if let Some(host) = &mut self.host {
            let heads = self.keys[0].dims()[1];
            host.select(picked, heads);
            self.lagging = true;
        } else {
            let sel4 = |x: &mut Tensor<4>| *x = x.clone().select(0, rows.clone());
            self.keys.iter_mut().for_each(sel4);
            self.values.iter_mut().for_each(sel4);
        }
        self.vectors = self.vectors.clone().select(0, rows.clone());
    }

    /// Whether the key and value tensors lag behind the host windows (see `lagging`): then
    /// [`view`](Self::view) reads the host windows.
    pub(crate) fn lagging(&self) -> bool {
        self.lagging
    }

    /// The stored slots of projection `p`'s window, read from the host windows
    /// (`[B, H, stored, Dh]` keys and values).
    fn window_from_host(&self, p: usize) -> (Tensor<4>, Tensor<4>) {
        let host = self
            .host
            .as_ref()
            .expect("lagging tensors have host windows");
        let [_, heads, _, dh] = self.keys[p].dims();
        let dims = [self.vectors.dims()[0], heads, self.stored, dh];
        let device = self.vectors.device();
        let (k, v) = host.live(p);
        let tensor = |x: Vec<f32>| Tensor::from_data(TensorData::new(x, dims), &device);
        (tensor(k), tensor(v))
    }

    /// Rebuild the key and value tensors from the host windows if they lag behind: the buffers
    /// hold the window at `start .. start + stored`, as if every step and reorder had gone to
    /// them.
    fn catch_up(&mut self) {
        if !self.lagging {
            return;
        }
        let slots = self.slots();
        let range = self.start..self.start + self.stored;
        for p in 0..self.keys.len() {
            let (k, v) = self.window_from_host(p);
            let fill = |window: Tensor<4>| {
                let [b, h, _, dh] = window.dims();
                let buf = Tensor::zeros([b, h, slots, dh], &window.device());
                match range.is_empty() {
                    true => buf,
                    false => buf.slice_assign([0..b, 0..h, range.clone(), 0..dh], window),
                }
            };
            self.keys[p] = fill(k);
            self.values[p] = fill(v);
        }
        self.lagging = false;
    }

    /// Start the rows where `rows` is true afresh: every slot of theirs becomes the zero
    /// memory (keys and values `zero`, vector 0), so their window is S zero memories, exactly
    /// a fresh sequence's; the other rows are untouched. An agent calls it when an episode of
    /// a batch row ends, inside a segment as well as between segments.
    ///
    /// # Shapes
    /// - rows: `B` flags
    /// - zero: per projection, the key and value of the zero memory `[1, H, 1, Dh]`
    pub fn reset_rows(&mut self, rows: &[bool], zero: &[(Tensor<4>, Tensor<4>)]) {
        let [b, slots, d] = self.vectors.dims();
        assert_eq!(rows.len(), b, "one reset flag per row");
        if !rows.contains(&true) {
            return;
        }
        self.catch_up();
        self.host = None;
        let device = self.vectors.device();
        let mask = Tensor::<1, Bool>::from_data(TensorData::new(rows.to_vec(), [b]), &device);
        let reset4 = |buf: &mut Tensor<4>, zero: &Tensor<4>| {
            let [_, h, _, dh] = buf.dims();
            let shape = [b, h, slots, dh];
            let mask = mask.clone().reshape([b, 1, 1, 1]).expand(shape);
            *buf = buf.clone().mask_where(mask, zero.clone().expand(shape));
        };
        for ((kb, vb), (k0, v0)) in self.keys.iter_mut().zip(self.values.iter_mut()).zip(zero) {
            reset4(kb, k0);
            reset4(vb, v0);
        }
        let mask = mask.reshape([b, 1, 1]).expand([b, slots, d]);
        self.vectors = self.vectors.clone().mask_fill(mask, 0.0);
    }

    /// Every slot's keys and values, per projection, as host vectors in the kernels'
    /// `[B·H, slots, Dh]` layout, with the first window slot: for the CPU kernels.
    pub fn host_buffers(&self) -> (Vec<Vec<f32>>, Vec<Vec<f32>>, usize) {
        self.assert_current();
        let host = |xs: &[Tensor<4>]| {
            xs.iter()
                .map(|x| crate::feedback::host(x.clone()))
                .collect()
        };
        (host(&self.keys), host(&self.values), self.start)
    }

    /// The key and value buffers, per projection (`[B, H, slots, Dh]`).
    pub fn buffers(&self) -> (&[Tensor<4>], &[Tensor<4>]) {
        self.assert_current();
        (&self.keys, &self.values)
    }

    /// Panics if the key and value tensors lag behind the host windows (only a beam search's
    /// memory inside a [`DecodeState`](crate::seq2seq_cache::DecodeState) does, which reads
    /// neither buffer).
    fn assert_current(&self) {
        assert!(
            !self.lagging,
            "the memory's key/value buffers lag behind its host windows (a beam search's)"
        );
    }

    fn slots(&self) -> usize {
        self.vectors.dims()[1]
    }

    /// Buffers full: grow them (a folded memory, up to `2·S` slots) or move the live window to
    /// the front.
    fn make_room(&mut self) {
        let slots = self.slots();
        if slots < self.max_slots {
            let grown = (2 * slots).clamp(INITIAL_SLOTS.min(self.max_slots), self.max_slots);
            let extra = grown - slots;
            let grow4 = |x: &mut Tensor<4>| {
                let [b, h, _, dh] = x.dims();
                let pad = Tensor::zeros([b, h, extra, dh], &x.device());
                *x = Tensor::cat(vec![x.clone(), pad], 2);
            };
            if !self.lagging {
                self.keys.iter_mut().for_each(grow4);
                self.values.iter_mut().for_each(grow4);
            }
            let [b, _, d] = self.vectors.dims();
            let pad = Tensor::zeros([b, extra, d], &self.vectors.device());
            self.vectors = Tensor::cat(vec![self.vectors.clone(), pad], 1);
            return;
        }
        let live = self.start..self.start + self.stored;
        let n = self.stored;
        let front4 = |x: &mut Tensor<4>| {
            let moved = x.clone().slice_dim(2, live.clone());
            let r = ranges4(x, 0..n);
            x.inplace(|buf| buf.slice_assign(r, moved));
        };
        if !self.lagging {
            self.keys.iter_mut().for_each(front4);
            self.values.iter_mut().for_each(front4);
        }
        let moved = self.vectors.clone().slice_dim(1, live);
        let [b, _, d] = self.vectors.dims();
        self.vectors
            .inplace(|buf| buf.slice_assign([0..b, 0..n, 0..d], moved));
        self.start = 0;
    }
}

/// All of a `[B, H, slots, Dh]` buffer but `slots` restricted to `range`.
fn ranges4(buf: &Tensor<4>, range: std::ops::Range<usize>) -> [std::ops::Range<usize>; 4] {
    let [b, h, _, dh] = buf.dims();
    [0..b, 0..h, range, 0..dh]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use mnemo_core::host::to_vec;

    fn scalar4(v: f32, device: &burn::tensor::Device) -> Tensor<4> {
        Tensor::full([1, 1, 1, 1], v, device)
    }

    fn values(x: Option<Tensor<4>>) -> Vec<f32> {
        x.map_or(Vec::new(), to_vec)
    }

    /// Stored memory: every step sees exactly the S values before it, through several moves to
    /// the front; the carried vectors are the last S.
    #[test]
    fn window_holds_the_previous_span_through_moves() {
        let device = mnemo_backend::test_device();
        let s = 3;
        let init: Vec<f32> = (0..s).map(|i| i as f32 - s as f32).collect(); // -3, -2, -1
        let kv = Tensor::<4>::from_data(TensorData::new(init.clone(), [1, 1, s, 1]), &device);
        let m = Tensor::<3>::from_data(TensorData::new(init, [1, s, 1]), &device);
        let mut memory = FeedbackMemory::new(m, vec![(kv.clone(), kv)], 2);
        for t in 0..11 {
            let view = memory.view(0);
            assert_eq!(view.folded, 0);
            let want: Vec<f32> = (t - s..t).map(|v| v as f32).collect();
            assert_eq!(values(view.keys), want, "step {t}");
            memory.push(
                Tensor::full([1, 1, 1], t as f32, &device),
                vec![(scalar4(t as f32, &device), scalar4(t as f32, &device))],
            );
        }
        let carried = to_vec(memory.memories());
        assert_eq!(carried, vec![8.0, 9.0, 10.0]);
    }

    /// Folded memory: the stored part grows to S, the folded count shrinks to 0, rows can be
    /// reordered, and the memories are written out with their zeros.
    #[test]
    fn folded_window_counts_zeros_and_selects_rows() {
        let device = mnemo_backend::test_device();
        let s = 4;
        let zero = vec![(scalar4(0.5, &device), scalar4(0.5, &device))];
        let mut memory = FeedbackMemory::folded(2, 1, s, zero);
        for t in 0..7 {
            let view = memory.view(0);
            assert_eq!(view.folded, s - t.min(s), "step {t}");
            let row0: Vec<f32> = (t.saturating_sub(s)..t).map(|v| v as f32).collect();
            let want: Vec<f32> = row0
                .iter()
                .copied()
                .chain(row0.iter().map(|v| v + 10.0))
                .collect();
            assert_eq!(
                values(view.keys),
                want,
                "step {t}: row 0's stored keys, then row 1's"
            );
            let kv = Tensor::<4>::from_data(
                TensorData::new(vec![t as f32, 10.0 + t as f32], [2, 1, 1, 1]),
                &device,
            );
            memory.push(Tensor::zeros([2, 1, 1], &device), vec![(kv.clone(), kv)]);
        }
        memory.select(&Tensor::from_data(
            TensorData::new(vec![1i64, 1], [2]),
            &device,
        ));
        let keys = values(memory.view(0).keys);
        assert_eq!(keys, vec![13.0, 14.0, 15.0, 16.0, 13.0, 14.0, 15.0, 16.0]);
        assert_eq!(memory.memories().dims(), [2, s, 1]);
    }

    /// Beam search reorders the host windows in place: after `select` (rows dropped and
    /// repeated, more rows than before; once while zero memories are folded, once after) and
    /// after further steps, they hold exactly what a fresh copy of the selected buffers holds,
    /// for every projection, row and head, and attend as it does.
    #[test]
    fn selected_host_windows_equal_a_fresh_copy() {
        let device = mnemo_backend::test_device();
        let (b, h, dh, s) = (3, 2, 2, 4);
        let kv = |seed: f32, rows: usize| {
            let data: Vec<f32> = (0..rows * h * dh)
                .map(|i| seed + i as f32 / 100.0)
                .collect();
            Tensor::<4>::from_data(TensorData::new(data, [rows, h, 1, dh]), &device)
        };
        let zero = (0..2)
            .map(|p| (kv(-1.0 - p as f32, 1), kv(-3.0 - p as f32, 1)))
            .collect();
        let mut memory = FeedbackMemory::folded(b, h * dh, s, zero);
        memory.sync_host();
        let step = |memory: &mut FeedbackMemory, t: usize| {
            let rows = memory.rows();
            let projected = (0..2)
                .map(|p| {
                    (
                        kv((10 * t + p) as f32, rows),
                        kv((10 * t + p) as f32 + 0.5, rows),
                    )
                })
                .collect();
            memory.push(Tensor::zeros([rows, 1, h * dh], &device), projected);
        };
        let pos: Vec<f32> = (0..s * dh).map(|i| (i as f32 * 0.37).sin()).collect();
        let check = |memory: &FeedbackMemory, when: &str| {
            let mut fresh = memory.clone();
            fresh.host = None;
            fresh.sync_host();
            for p in 0..2 {
                let (kept, fresh) = (memory.host().unwrap(), fresh.host().unwrap());
                assert_eq!(kept.rows(), fresh.rows(), "{when}");
                assert_eq!(kept.live(p), fresh.live(p), "{when}, projection {p}");
                let q: Vec<f32> = (0..kept.rows() * dh).map(|i| (i as f32).cos()).collect();
                let out = kept.attend(p, &pos, &q);
                assert_eq!(out, fresh.attend(p, &pos, &q), "{when}, projection {p}");
            }
        };
        let select = |memory: &mut FeedbackMemory, picked: &[i64]| {
            let n = picked.len();
            memory.select(&Tensor::from_data(
                TensorData::new(picked.to_vec(), [n]),
                &device,
            ));
            assert!(memory.host().is_some(), "select keeps the host windows");
        };
        for t in 1..=2 {
            step(&mut memory, t);
        }
        select(&mut memory, &[2, 0, 0, 1]);
        check(&memory, "after a select with zeros folded");
        for t in 3..=6 {
            step(&mut memory, t);
            check(&memory, &format!("step {t}"));
        }
        select(&mut memory, &[3, 1, 1, 0, 2]);
        check(&memory, "after select");
        for t in 7..=9 {
            step(&mut memory, t);
            check(&memory, &format!("step {t}"));
        }
    }

    /// A beam search's memory (`select_rows_for_search` with host windows) leaves its key and
    /// value tensors behind: its views (read from the host windows), and its tensors once
    /// caught up, equal those of a memory without host windows given the same steps and
    /// reorders (rows dropped, repeated and added; with zeros folded, after, and through a move
    /// to the front); the steps after a reorder skip the tensors.
    #[test]
    fn search_memory_views_equal_the_tensor_path() {
        let device = mnemo_backend::test_device();
        let (h, dh, s) = (2, 2, 3);
        let kv = |seed: f32, rows: usize| {
            let data: Vec<f32> = (0..rows * h * dh)
                .map(|i| seed + i as f32 / 100.0)
                .collect();
            Tensor::<4>::from_data(TensorData::new(data, [rows, h, 1, dh]), &device)
        };
        let zero: Vec<_> = (0..2)
            .map(|p| (kv(-1.0 - p as f32, 1), kv(-3.0, 1)))
            .collect();
        let mut search = FeedbackMemory::folded(2, h * dh, s, zero.clone());
        search.sync_host();
        let mut reference = FeedbackMemory::folded(2, h * dh, s, zero);
        let step = |memory: &mut FeedbackMemory, t: usize| {
            let rows = memory.rows();
            let projected = (0..2)
                .map(|p| (kv((10 * t + p) as f32, rows), kv(0.5 + t as f32, rows)))
                .collect();
            memory.push(
                Tensor::full([rows, 1, h * dh], t as f32, &device),
                projected,
            );
        };
        let same = |search: &FeedbackMemory, reference: &FeedbackMemory, when: &str| {
            for p in 0..2 {
                let (got, want) = (search.view(p), reference.view(p));
                assert_eq!(got.folded, want.folded, "{when}");
                assert_eq!(values(got.keys), values(want.keys), "{when}, keys {p}");
                assert_eq!(
                    values(got.values),
                    values(want.values),
                    "{when}, values {p}"
                );
            }
            let (got, want) = (search.memories(), reference.memories());
            assert_eq!(to_vec(got), to_vec(want), "{when}, memory vectors");
        };
        let reorders: [&[usize]; 3] = [&[1, 0, 0], &[2, 2, 0, 1], &[3, 1]];
        for (t, picked) in (1..=9).zip(reorders.iter().cycle()) {
            step(&mut search, t);
            step(&mut reference, t);
            let rows = Tensor::from_data(
                TensorData::new(picked.iter().map(|&r| r as i64).collect(), [picked.len()]),
                &device,
            );
            search.select_rows_for_search(picked, &rows);
            reference.select_rows_for_search(picked, &rows);
            assert!(search.lagging() && !reference.lagging(), "step {t}");
            same(
                &search,
                &reference,
                &format!("after the reorder of step {t}"),
            );
        }
        search.catch_up();
        assert!(!search.lagging());
        same(&search, &reference, "caught up");
        step(&mut search, 10);
        step(&mut reference, 10);
        same(&search, &reference, "a step after catching up");
    }
}
