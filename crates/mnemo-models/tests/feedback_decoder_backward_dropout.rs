//! The Feedback decoder's manual backward with dropout (encoder, embeddings, the decoder core's
//! attention and feed-forward, the cross-attention outputs) against burn's autodiff with the
//! same masks, with the per-step products on the backend and on the host kernels (the encoder
//! by hand).
//!
//! The only test of its binary: the backend RNG that draws dropout masks is process-wide, and
//! the tests of one binary run on parallel threads, so another test's draws would interleave
//! with the masks both paths must draw alike.
mod common;

use common::assert_differs;
use common::seq2seq_grads::decoder_batches;
use mnemo_models::StepProducts;

const VOCAB: usize = 19;

/// From one seed both paths draw the same masks (the autodiff part the encoder's and the
/// embeddings', the manual part the core's and the cross-attention's, in the autodiff step's
/// order), so logits and every gradient agree; from another seed the logits differ (the masks
/// act).
#[test]
fn decoder_manual_backward_with_dropout_equals_autodiff_with_the_same_masks() {
    let device = mnemo_backend::test_device();
    // With the host products the encoder runs by hand too.
    let cases = [StepProducts::Backend, StepProducts::Host]
        .into_iter()
        .flat_map(|products| {
            let cases = decoder_batches(VOCAB, 0.3, &device).into_iter();
            cases.map(move |(name, mut case)| {
                case.model = case.model.with_step_products(products);
                (format!("{name}, {products:?}"), case)
            })
        });
    for (i, (name, case)) in cases.enumerate() {
        let masks_seed = 1000 + i as u64;
        let forward = |seed| {
            device.seed(seed);
            case.forward()
        };
        let logits = forward(masks_seed);
        let other = forward(masks_seed + 500);
        let what = format!("{name}: logits with other masks");
        assert_differs(&what, other.inner(), logits.clone().inner(), 1e-2);
        let auto = case.autodiff_grads(logits.clone());
        device.seed(masks_seed);
        case.assert_manual_matches(&name, logits, &auto);
    }
}
