//! The gradient of a loss of a segment's logits and values, for every parameter of a policy.
//!
//! Where the Feedback core's exact manual backward applies (pre-norm, no dropout:
//! [`Policy::has_manual_backward`]) the segment is cut into its episode pieces
//! ([`Fragments`]), the core runs forward and backward by hand over the pieces, the heads and
//! the loss by autodiff on the pieces' top states gathered back into the rows, and the
//! observation encoder by one autodiff pass from the input gradients the core returns
//! (`Σ x ⊙ dx`). Everywhere else (or with [`Backward::Autodiff`]) it is autodiff of
//! [`Policy::segment`]. Both are equal up to float rounding (tests/manual_backward.rs).
//!
//! Size legend: B rows, T steps, F episode pieces, O observation length, A actions, D d_model.
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use mnemo_models::feedback::{NoManualHook, move_grads};

use super::{Carried, Fragments, Policy, PolicyCore};

/// Which backward [`Policy::segment_grads`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backward {
    /// The Feedback core's manual backward where it applies, autodiff elsewhere.
    Fastest,
    /// burn's autodiff of [`Policy::segment`] alone (the reference the manual path is tested
    /// against).
    Autodiff,
}

impl Policy {
    /// Whether [`segment_grads`](Self::segment_grads) runs the Feedback core's manual backward.
    pub fn has_manual_backward(&self) -> bool {
        matches!(&self.core, PolicyCore::Feedback(core)
            if core.supports_manual_backward() && !core.has_dropout())
    }

    /// Logits, values and the gradient of `loss` of them for every parameter, over a segment
    /// from the memory carried into it (episode starts as in [`segment`](Self::segment));
    /// through the manual backward where it applies and `backward` allows it (see the
    /// [module docs](self)).
    ///
    /// `loss` receives the logits `[B, T, A]` and values `[B, T]` and returns a scalar.
    ///
    /// # Shapes
    /// - obs: `[B, T, O]` on an autodiff device; starts: `B·T` flags, row-major
    /// - output: logits `[B, T, A]` (detached) and the gradients
    pub fn segment_grads(
        &self,
        obs: Tensor<3>,
        starts: &[bool],
        carried: Carried,
        backward: Backward,
        loss: impl FnOnce(Tensor<3>, Tensor<2>) -> Tensor<1>,
    ) -> (Tensor<3>, GradientsParams) {
        let core = match &self.core {
            PolicyCore::Feedback(core)
                if backward == Backward::Fastest && self.has_manual_backward() =>
            {
                core
            }
            _ => {
                let (logits, values, _) = self.segment(obs, starts, carried);
                let grads =
                    GradientsParams::from_grads(loss(logits.clone(), values).backward(), self);
                return (logits.detach(), grads);
            }
        };
        let [b, t_len, o] = obs.dims();
        let device = obs.device();
        let pieces = Fragments::of(starts, b, t_len);
        let f = pieces.len();
        let spread = pieces.spread(&mnemo_core::host::to_vec(obs), o);
        let x = self.encoder.forward(Tensor::from_data(
            TensorData::new(spread, [f, t_len, o]),
            &device,
        ));
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(pieces.gather_index(), [b * t_len]),
            &device,
        );
        let mut manual = GradientsParams::new();
        let mut heads = None;
        let top_grad = |top: Tensor<3>| {
            // The heads and the loss by autodiff, from the pieces' top states as a leaf.
            let d = top.dims()[2];
            let leaf = top.autodiff().require_grad();
            let rows = leaf
                .clone()
                .reshape([f * t_len, d])
                .select(0, index)
                .reshape([b, t_len, d]);
            let (logits, values) = self.heads(rows);
            let mut grads = loss(logits.clone(), values.squeeze_dim::<2>(2)).backward();
            let dtop = leaf
                .grad_remove(&mut grads)
                .expect("the top states are a leaf");
            heads = Some((logits.detach(), GradientsParams::from_grads(grads, self)));
            dtop
        };
        let memories = pieces.carried(&carried).tensor(&device);
        let out = core.forward_backward(
            x.clone(),
            memories,
            &mut NoManualHook,
            &mut manual,
            Some(top_grad),
        );
        let (logits, mut head_grads) = heads.expect("the top gradient was asked for");
        let dx = out.dx.expect("a backward ran").autodiff();
        let mut grads = GradientsParams::from_grads((x * dx).sum().backward(), self);
        move_grads(self, &mut head_grads, &mut grads);
        move_grads(self, &mut manual, &mut grads);
        (logits, grads)
    }
}
