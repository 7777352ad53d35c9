//! The largest value of each block of a row, vectorised: what lets a search skip the blocks of a
//! vocabulary that cannot hold a better candidate than the ones it keeps (beam search's
//! per-hypothesis top-2K scan reads one maximum per block instead of every log-probability).
use crate::Isa;
use crate::dispatch::on_isa;
use crate::softmax_rows::row_max;

/// `out[b]` = the largest of `x[b·block .. (b+1)·block]` (the last block may be shorter), NaN
/// where a block holds one. `out` is cleared first.
///
/// # Shapes
/// - x: `[n]`; out: `[⌈n / block⌉]`
///
/// # Panics
/// If `block` is 0 or the CPU does not support `isa`.
pub fn block_maxima(isa: Isa, x: &[f32], block: usize, out: &mut Vec<f32>) {
    assert!(
        block > 0,
        "block_maxima: the block must hold at least one value"
    );
    out.clear();
    on_isa!(isa, blocks_loop(x: &[f32], block: usize, out: &mut Vec<f32>));
}

/// The loop every instruction set compiles (inlined into [`on_isa!`]'s wrappers).
#[inline(always)]
fn blocks_loop(x: &[f32], block: usize, out: &mut Vec<f32>) {
    out.extend(x.chunks(block).map(row_max));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a plain scan on every instruction set: blocks of 1, 16, 256 and 300 over 1,000
    /// values (a shorter last block), a NaN in one block, −∞ and ties.
    #[test]
    fn each_block_s_largest_value() {
        let mut x: Vec<f32> = (0..1000u32)
            .map(|t| ((t * 7919 % 613) as f32 - 300.0) * 0.01)
            .collect();
        x[77] = f32::NAN;
        x[500..540].fill(f32::NEG_INFINITY);
        x[900] = 9.0;
        x[901] = 9.0;
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            if !isa.supported() {
                continue;
            }
            for block in [1, 16, 256, 300] {
                let mut got = vec![123.0];
                block_maxima(isa, &x, block, &mut got);
                let want: Vec<f32> = x
                    .chunks(block)
                    .map(|c| match c.iter().any(|v| v.is_nan()) {
                        true => f32::NAN,
                        false => c.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                    })
                    .collect();
                assert_eq!(got.len(), want.len(), "{isa:?}, block {block}");
                for (b, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        g == w || (g.is_nan() && w.is_nan()),
                        "{isa:?}, block {block}, #{b}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
