//! The comparison of a manual backward's gradients with burn's autodiff, parameter by
//! parameter (tests/feedback_backward*.rs, tests/transformer_backward.rs).
use burn::module::Param;
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Gradients, Int, Tensor};
use mnemo_core::Norm;

use super::{assert_differs, assert_grad_matches, max_abs, max_abs_diff, tokens};

/// What a manual backward is compared with on one batch: the tokens, a random probe (the loss
/// is `Σ logits · probe`, so the logits' gradient is the probe), autodiff's logits and
/// gradients, and the seed the dropout masks were drawn from (the manual backward reseeds with
/// it to draw the same masks), and what else the forward returned (a Feedback model's next
/// state).
pub struct Reference<S> {
    pub x: Tensor<2, Int>,
    pub probe: Tensor<3>,
    pub masks_seed: u64,
    pub logits: Tensor<3>,
    pub auto: Gradients,
    pub rest: S,
}

impl<S> Reference<S> {
    /// Batch `seg` of `b × t_len` tokens below `vocab` through `forward` with autodiff. With
    /// `dropout`, a second forward from another seed must give other logits (the masks act).
    ///
    /// # Shapes
    /// - `forward`: tokens `[b, t_len]` → logits `[b, t_len, vocab]` and the rest
    pub fn of(
        name: &str,
        (b, t_len, vocab): (usize, usize, usize),
        seg: u64,
        dropout: bool,
        device: &Device,
        forward: impl Fn(Tensor<2, Int>) -> (Tensor<3>, S),
    ) -> Self {
        let x = tokens(b, t_len, vocab, 100 + seg, device);
        let probe = Tensor::<3>::random([b, t_len, vocab], Distribution::Normal(0.0, 1.0), device);
        let masks_seed = 1000 + seg;
        device.seed(masks_seed);
        let (logits, rest) = forward(x.clone());
        if dropout {
            device.seed(masks_seed + 500);
            let (other, _) = forward(x.clone());
            let what = format!("{name}: other dropout masks");
            assert_differs(&what, other.inner(), logits.clone().inner(), 1e-3);
        }
        let auto = (logits.clone() * probe.clone()).sum().backward();
        Self {
            x,
            probe,
            masks_seed,
            logits,
            auto,
            rest,
        }
    }

    /// The logits' gradient the manual backward is given: the probe (the logits' shape checked).
    pub fn loss_grad(&self) -> impl FnOnce(Tensor<3>) -> Tensor<3> + '_ {
        |logits| {
            assert_eq!(logits.dims(), self.probe.dims(), "logits' shape");
            self.probe.clone().inner()
        }
    }

    /// Asserts that the manual backward's logits equal autodiff's ([`assert_logits_match`]).
    pub fn assert_logits(&self, name: &str, manual: Tensor<3>) {
        assert_logits_match(name, manual, self.logits.clone().inner());
    }
}

/// Compares the manual gradient of each parameter it is shown with the autodiff one, and
/// counts them (so that a test can check that every parameter with a gradient was compared).
pub struct Checker<'a> {
    /// The case, for messages.
    pub name: String,
    /// Autodiff's gradients.
    pub auto: &'a Gradients,
    /// The manual backward's.
    pub manual: &'a GradientsParams,
    /// Parameters compared so far.
    pub checked: usize,
}

impl<'a> Checker<'a> {
    /// A checker for case `name`, nothing compared yet.
    pub fn new(name: &str, auto: &'a Gradients, manual: &'a GradientsParams) -> Self {
        Checker {
            name: name.to_string(),
            auto,
            manual,
            checked: 0,
        }
    }

    /// The parameters around every language model's layers: embedding, head, final norm.
    pub fn lm_ends(&mut self, embedding: &Param<Tensor<2>>, head: &Linear, final_norm: &Norm) {
        self.check("embedding", embedding);
        self.linear("head", head);
        self.norm("final_norm", final_norm);
    }

    pub fn check<const D: usize>(&mut self, label: &str, p: &Param<Tensor<D>>) {
        let want = p
            .val()
            .grad(self.auto)
            .unwrap_or_else(|| panic!("{}: no autodiff grad for {label}", self.name));
        let got: Tensor<D> = self
            .manual
            .get(p.id)
            .unwrap_or_else(|| panic!("{}: no manual grad for {label}", self.name));
        let got = got.to_device(&want.device());
        assert_grad_matches(&format!("{}: grad of {label}", self.name), got, want);
        self.checked += 1;
    }

    pub fn norm(&mut self, label: &str, norm: &Norm) {
        match norm {
            Norm::Layer(n) => {
                self.check(&format!("{label}.gamma"), &n.gamma);
                self.check(&format!("{label}.beta"), n.beta.as_ref().expect("beta"));
            }
            Norm::Rms(n) => self.check(&format!("{label}.gamma"), &n.gamma),
        }
    }

    pub fn linear(&mut self, label: &str, linear: &Linear) {
        self.check(&format!("{label}.weight"), &linear.weight);
        if let Some(bias) = &linear.bias {
            self.check(&format!("{label}.bias"), bias);
        }
    }
}

/// Asserts that the manual logits equal autodiff's: max |Δ| < 1e-5 · (1 + max |want|).
pub fn assert_logits_match(name: &str, got: Tensor<3>, want: Tensor<3>) {
    let diff = max_abs_diff(got, want.clone());
    assert!(
        diff < 1e-5 * (1.0 + max_abs(want)),
        "{name}: logits differ by {diff}"
    );
}
