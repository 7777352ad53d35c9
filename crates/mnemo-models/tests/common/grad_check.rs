//! The comparison of a manual backward's gradients with burn's autodiff, parameter by
//! parameter (tests/feedback_backward*.rs, tests/transformer_backward.rs).
use burn::module::Param;
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::{Gradients, Tensor};
use mnemo_core::Norm;

use super::{assert_grad_matches, max_abs, max_abs_diff};

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
