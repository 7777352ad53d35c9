//! A two-layer module for the unit tests of the operations over all parameters (gradient
//! clipping, the non-finite weight check).
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};

/// Two linear layers, visited in the order `first`, `second`.
#[derive(Module, Debug)]
pub(crate) struct Two {
    pub first: Linear,
    pub second: Linear,
}

/// Two layers on the test device, of sizes `[d_in, d_out]` each.
pub(crate) fn two([first, second]: [[usize; 2]; 2]) -> Two {
    let device = mnemo_backend::test_device();
    let linear = |[d_in, d_out]: [usize; 2]| LinearConfig::new(d_in, d_out).init(&device);
    Two {
        first: linear(first),
        second: linear(second),
    }
}
