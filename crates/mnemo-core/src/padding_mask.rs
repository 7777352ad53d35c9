//! Key padding masks: which key positions of a padded batch hold padding.
use burn::tensor::{Bool, Int, Tensor};

/// The key padding mask of a padded batch of token ids, shaped for [`attend`](crate::attend):
/// true where the key is padding (`token == pad`) and must not be attended.
///
/// # Shapes
/// - tokens: `[B, S]`
/// - output: `[B, 1, 1, S]`
pub fn key_padding_mask(tokens: Tensor<2, Int>, pad: i64) -> Tensor<4, Bool> {
    let [b, s] = tokens.dims();
    tokens.equal_elem(pad).reshape([b, 1, 1, s])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn marks_exactly_the_pad_tokens() {
        let device = mnemo_backend::test_device();
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(vec![5i64, 0, 7, 0, 0, 3], [2, 3]),
            &device,
        );
        let mask = key_padding_mask(tokens, 0);
        assert_eq!(mask.dims(), [2, 1, 1, 3]);
        let mask: Vec<bool> = mask.into_data().try_to_vec::<bool>().unwrap();
        assert_eq!(mask, vec![false, true, false, true, true, false]);
    }
}
