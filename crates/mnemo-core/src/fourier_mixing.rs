//! Fourier token mixing: FNet's parameter-free replacement of self-attention (Lee-Thorp et al.,
//! "FNet: Mixing Tokens with Fourier Transforms", 2021), for encoders (it is bidirectional: every
//! output position reads every input position, so it cannot serve a causal model).
//!
//! FNet's sublayer takes a 2-D discrete Fourier transform, along the hidden dimension and then
//! along the sequence, and keeps its real part:
//!
//! ```text
//! y = Re(F_n · x · F_D),   F_N[j, k] = exp(-2πi·jk/N) = C_N[j, k] − i·S_N[j, k]
//!   = C_n · x · C_D − S_n · x · S_D      (C = cos, S = sin of 2π·jk/N; all real matmuls)
//! ```
//!
//! for one sequence `x` `[n, D]` of n tokens. Computed here as two real matrix products (no
//! complex numbers, no FFT): `[P | Q] = x · [C_D | S_D]`, then `y = [C_n | −S_n] · [P ; Q]`.
//!
//! Two choices of this implementation, both documented where they apply:
//!
//! - **Scale.** The output is divided by `√(n·D)` (the unitary DFT, numpy's `norm="ortho"`), so
//!   the sublayer's output has the scale of its input at every sentence length. The paper's
//!   unscaled transform grows with `√(n·D)`; FNet follows it with a post-LayerNorm, but in a
//!   pre-norm residual stream (`x + f(norm(x))`, mnemo's default) it would drown every other
//!   sublayer and its size would depend on the sentence length.
//! - **Padding.** FNet mixes padding tokens like any other. Here padding contributes nothing: a
//!   sentence of n real tokens padded to T is transformed by the n-point DFT over its real
//!   tokens in order (the k-th real token is DFT index k, wherever the pads are), pads are
//!   zeroed before mixing and their outputs are zero. So a padded sentence mixes exactly as
//!   its unpadded self. (Zeroing alone would not do: a T-point DFT of the zero-padded sequence
//!   has other frequencies than the n-point DFT of the sentence.)
//!
//! The `n·n` and `D·D` cosine and sine matrices are built per call, on the device, from exact
//! integer products `jk mod n` (so angles stay exact for long sequences); they carry no
//! gradient. Nothing is cached.
use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Deserializer, Serialize};

/// Which token mixing an encoder layer uses (`mixing = "attention" | "fourier"` in a config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenMixing {
    /// Self-attention (the default).
    #[default]
    Attention,
    /// [`FourierMixing`]: FNet's parameter-free 2-D Fourier transform.
    Fourier,
}

impl<'de> Deserialize<'de> for TokenMixing {
    /// `"attention"` or `"fourier"`; any other value is an error naming the field `mixing`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        match value.as_str() {
            "attention" => Ok(TokenMixing::Attention),
            "fourier" => Ok(TokenMixing::Fourier),
            other => Err(serde::de::Error::custom(format!(
                "mixing: unknown token mixing {other:?}, expected \"attention\" or \"fourier\""
            ))),
        }
    }
}

/// FNet's Fourier token mixing; see the [module docs](self). It has no parameters: a field of
/// this type in a module is declared `#[module(skip)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FourierMixing;

impl FourierMixing {
    /// `Re(F_n · x · F_D) / √(n·D)` per sequence, over its n non-padding positions; padding
    /// positions neither contribute nor receive anything (their outputs are 0).
    ///
    /// # Shapes
    /// - x: `[B, T, D]`
    /// - padding: `[B, T]`, true where a position is padding (`None`: no padding, n = T)
    /// - output: `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let device = x.device();
        // Which positions are real tokens: [R, T] with R = B, or R = 1 (broadcast) unpadded.
        let (x, keep) = match padding {
            Some(pad) => {
                assert_eq!(pad.dims(), [b, t], "padding: shape must be [B, T] of x");
                let x = x.mask_fill(pad.clone().reshape([b, t, 1]).expand([b, t, d]), 0.0);
                (x, pad.bool_not().int())
            }
            None => (x, Tensor::<2, Int>::ones([1, t], &device)),
        };
        let rows = keep.dims()[0];
        let (cos_d, sin_d) = dft_bases(Tensor::<2, Int>::ones([1, d], &device));
        let hidden = Tensor::cat(vec![cos_d, sin_d], 2).reshape([d, 2 * d]);
        // [P | Q] = x · [C_D | S_D], then [P ; Q] stacked along the sequence: [B, 2T, D].
        let pq = x.reshape([b * t, d]).matmul(hidden).reshape([b, t, 2 * d]);
        let stacked = Tensor::cat(vec![pq.clone().narrow(2, 0, d), pq.narrow(2, d, d)], 1);
        let (cos_n, sin_n) = dft_bases(keep.clone());
        let sequence = Tensor::cat(vec![cos_n, sin_n.neg()], 2); // [R, T, 2T]
        let n = keep.sum_dim(1).float().clamp_min(1.0).reshape([rows, 1, 1]);
        sequence.matmul(stacked) / (n * d as f64).sqrt()
    }
}

/// The cosine and sine matrices of each row's DFT over its kept positions: for kept positions
/// i, j of ranks `r_i`, `r_j` among the row's `n` kept ones,
/// `C[i, j] = cos(2π·(r_i·r_j mod n)/n)` and `S[i, j] = sin(…)`; 0 where i or j is not kept.
///
/// # Shapes
/// - keep: `[R, N]`, 1 where a position is kept, else 0
/// - output: two `[R, N, N]`
fn dft_bases(keep: Tensor<2, Int>) -> (Tensor<3>, Tensor<3>) {
    let [r, n] = keep.dims();
    let rank = (keep.clone().cumsum(1) - 1).clamp_min(0); // [R, N]
    let count = keep.clone().sum_dim(1).clamp_min(1).reshape([r, 1, 1]); // [R, 1, 1]
    let product = rank.clone().reshape([r, n, 1]) * rank.reshape([r, 1, n]); // [R, N, N]
    let angle =
        product.remainder(count.clone()).float() * (2.0 * std::f64::consts::PI) / count.float();
    let keep = keep.float();
    let both = keep.clone().reshape([r, n, 1]) * keep.reshape([r, 1, n]);
    (angle.clone().cos() * both.clone(), angle.sin() * both)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::to_vec;
    use crate::seeded;
    use burn::tensor::{Device, TensorData};

    /// The unitary 2-D DFT's real part of one `[n, d]` sequence, as a complex double sum in f64:
    /// `y[j, k] = Re Σ_{t<n} Σ_{h<d} x[t, h] e^{-2πi(jt/n + kh/d)} / √(n·d)`.
    fn naive(x: &[f64], n: usize, d: usize) -> Vec<f64> {
        let mut y = vec![0.0; n * d];
        for j in 0..n {
            for k in 0..d {
                let mut re = 0.0f64;
                for t in 0..n {
                    for h in 0..d {
                        let phase = -2.0
                            * std::f64::consts::PI
                            * ((j * t) as f64 / n as f64 + (k * h) as f64 / d as f64);
                        // Re(x · e^{iφ}) for real x.
                        re += x[t * d + h] * phase.cos();
                    }
                }
                y[j * d + k] = re / ((n * d) as f64).sqrt();
            }
        }
        y
    }

    fn pad_mask(rows: &[Vec<bool>], device: &Device) -> Tensor<2, Bool> {
        let t = rows[0].len();
        let flat: Vec<bool> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), t]), device)
    }

    /// Unpadded, the mixing is the real part of the 2-D DFT, computed independently.
    #[test]
    fn equals_a_naive_complex_dft() {
        let device = mnemo_backend::test_device();
        let (b, t, d) = (2, 7, 6);
        let x = seeded::normal([b, t, d], 1, &device);
        let host: Vec<f64> = to_vec(x.clone()).into_iter().map(f64::from).collect();
        let got = to_vec(FourierMixing.forward(x, None));
        for row in 0..b {
            let want = naive(&host[row * t * d..(row + 1) * t * d], t, d);
            for (i, w) in want.iter().enumerate() {
                let g = got[row * t * d + i] as f64;
                assert!((g - w).abs() < 1e-5, "row {row} entry {i}: {g} vs {w}");
            }
        }
        // Not the identity or a permutation: some output differs from every input.
        assert!(
            got.iter()
                .any(|g| host.iter().all(|h| (h - *g as f64).abs() > 1e-3))
        );
    }

    /// A sentence padded anywhere (after, before, between its tokens) mixes exactly as its
    /// unpadded self (the n-point DFT of its tokens in order); pad outputs are 0 and pad
    /// inputs, however large, change nothing.
    #[test]
    fn padding_contributes_nothing() {
        let device = mnemo_backend::test_device();
        let (t, d) = (7, 4);
        let layouts: Vec<Vec<bool>> = vec![
            vec![false, false, false, false, false, true, true],
            vec![true, true, false, false, false, false, false],
            vec![false, true, false, false, true, false, false],
            vec![false; 7],
        ];
        let x = seeded::normal([layouts.len(), t, d], 2, &device);
        let garbage = seeded::normal([layouts.len(), t, d], 3, &device).mul_scalar(100.0);
        let mask = pad_mask(&layouts, &device);
        let fill = mask
            .clone()
            .reshape([layouts.len(), t, 1])
            .expand([layouts.len(), t, d]);
        let noisy = x.clone().mask_where(fill, garbage);
        let got = FourierMixing.forward(noisy, Some(mask));
        for (row, layout) in layouts.iter().enumerate() {
            let real: Vec<usize> = (0..t).filter(|&i| !layout[i]).collect();
            let alone = Tensor::cat(
                real.iter()
                    .map(|&i| x.clone().slice([row..row + 1, i..i + 1, 0..d]))
                    .collect(),
                1,
            );
            let want = to_vec(FourierMixing.forward(alone, None));
            let got = to_vec(got.clone().slice([row..row + 1, 0..t, 0..d]));
            for (k, &i) in real.iter().enumerate() {
                for h in 0..d {
                    let (g, w) = (got[i * d + h], want[k * d + h]);
                    assert!((g - w).abs() < 1e-5, "row {row} pos {i}: {g} vs {w}");
                }
            }
            for i in (0..t).filter(|&i| layout[i]) {
                assert!(got[i * d..(i + 1) * d].iter().all(|&g| g == 0.0), "pad {i}");
            }
        }
    }

    /// The bases hold exact angles: `jk mod n` is taken in integers.
    #[test]
    fn bases_are_cos_and_sin_of_exact_angles() {
        let device = mnemo_backend::test_device();
        let n = 50;
        let (c, s) = dft_bases(Tensor::<2, Int>::ones([1, n], &device));
        let (c, s) = (to_vec(c), to_vec(s));
        for j in 0..n {
            for k in 0..n {
                let a = 2.0 * std::f64::consts::PI * (j * k) as f64 / n as f64;
                assert!((c[j * n + k] as f64 - a.cos()).abs() < 1e-6);
                assert!((s[j * n + k] as f64 - a.sin()).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn mixing_parses_and_refuses_unknown_values_by_field() {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        let parse = |v: &'static str| {
            let de: StrDeserializer<'_, Error> = v.into_deserializer();
            TokenMixing::deserialize(de)
        };
        assert_eq!(parse("attention").unwrap(), TokenMixing::Attention);
        assert_eq!(parse("fourier").unwrap(), TokenMixing::Fourier);
        assert_eq!(TokenMixing::default(), TokenMixing::Attention);
        let err = parse("fft").unwrap_err().to_string();
        assert!(err.starts_with("mixing:") && err.contains("fft"), "{err}");
    }
}
