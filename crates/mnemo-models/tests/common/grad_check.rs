//! The comparison of a manual backward's gradients with burn's autodiff, parameter by
//! parameter (tests/feedback_backward*.rs, tests/transformer_backward.rs).
use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::{Gradients, Tensor};
use mnemo_core::Norm;

use super::assert_grad_matches;

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

impl Checker<'_> {
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

    pub fn linear(&mut self, label: &str, linear: &burn::nn::Linear) {
        self.check(&format!("{label}.weight"), &linear.weight);
        if let Some(bias) = &linear.bias {
            self.check(&format!("{label}.bias"), bias);
        }
    }
}
