//! The Fourier-mixing encoder (padding invariance, global mixing within a sentence) and the
//! CAN decoder layer (against a one-softmax host reference; its parameter count).
use super::*;

/// The Fourier encoder encodes a padded sentence, at its tokens, exactly as the sentence alone
/// (pre- and post-norm); its mixing is global within a sentence (the last token moves the first
/// state) and never crosses sentences.
#[test]
fn fourier_encoder_encodes_a_padded_sentence_as_its_unpadded_self() {
    let device = mnemo_backend::test_device().inner();
    for placement in [
        mnemo_core::NormPlacement::Pre,
        mnemo_core::NormPlacement::Post,
    ] {
        let config = Seq2SeqConfig {
            mixing: TokenMixing::Fourier,
            placement,
            ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer)
        };
        let model = seeded(&config, 36, &device);
        let lens = [6usize, 3, 5];
        let src = batch(&lens, 8, 37, false, &device);
        let enc = model.encode(src.clone());
        for (row, &n) in lens.iter().enumerate() {
            let alone = model.encode(src.clone().slice([row..row + 1, 0..n]));
            let d = max_abs_diff(enc.states.clone().slice([row..row + 1, 0..n]), alone.states);
            assert!(
                d < 1e-5,
                "{placement:?} row {row}: padding moved the states by {d}"
            );
        }
        let last = src.clone().slice([0..1, 5..6]).into_scalar::<i64>();
        let changed = src.clone().slice_assign(
            [0..1, 5..6],
            Tensor::from_data(
                TensorData::new(vec![if last == 4 { 5i64 } else { 4 }], [1, 1]),
                &device,
            ),
        );
        let moved = model.encode(changed).states;
        let first = max_abs_diff(
            enc.states.clone().slice([0..1, 0..1]),
            moved.clone().slice([0..1, 0..1]),
        );
        assert!(
            first > 1e-4,
            "{placement:?}: the last token did not reach the first"
        );
        let others = max_abs_diff(enc.states.slice([1..3, 0..8]), moved.slice([1..3, 0..8]));
        assert_eq!(others, 0.0, "{placement:?}: mixing crossed sentences");
    }
}

/// A linear layer's weight `[in, out]` (row-major) and bias on the host, in f64.
fn host_linear(l: &burn::nn::Linear) -> (Vec<f64>, Vec<f64>) {
    let w = host::to_vec(l.weight.val()).into_iter().map(f64::from);
    let b = host::to_vec(l.bias.as_ref().expect("bias").val());
    (w.collect(), b.into_iter().map(f64::from).collect())
}

/// `x W + b` for one row `x`.
fn host_apply(x: &[f64], (w, b): &(Vec<f64>, Vec<f64>)) -> Vec<f64> {
    let out = b.len();
    let mut y = b.clone();
    for (i, xi) in x.iter().enumerate() {
        for (o, yo) in y.iter_mut().enumerate() {
            *yo += xi * w[i * out + o];
        }
    }
    y
}

/// GELU `x Φ(x)` with erf from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
fn host_gelu(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * z.abs());
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erf = (1.0 - poly * (-z * z).exp()).copysign(z);
    0.5 * x * (1.0 + erf)
}

/// A softmax of `scores` applied to `values` (rows of equal width).
fn host_softmax_sum(scores: &[f64], values: &[Vec<f64>]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let z: f64 = w.iter().sum();
    let mut out = vec![0.0; values[0].len()];
    for (wi, v) in w.iter().zip(values) {
        for (o, vi) in out.iter_mut().zip(v) {
            *o += wi / z * vi;
        }
    }
    out
}

/// One pre-norm CAN layer equals a host reference written here from the equations: per head,
/// ONE softmax over [the target keys t−S < i ≤ t, scored `q·(k_i + p_{t−i})/√Dh` ; the
/// non-PAD source keys, scored `q·k'_j/√Dh`], the F/H-wide values summed under it, then
/// `x + W_2 gelu(a + W_1 x̂ + b_1)`. The same weights with two softmaxes (target and source
/// normalised apart, as the Transformer decoder's two attention sublayers do) give other
/// outputs, so the comparison can fail; span 3 < T, so the span mask is exercised too.
#[test]
fn can_layer_equals_a_one_softmax_host_reference() {
    let device = mnemo_backend::test_device().inner();
    let config = Seq2SeqConfig {
        span: 3,
        ..Seq2SeqConfig::tiny(VOCAB, DecoderKind::Can)
    };
    let (d, f, heads, span) = (config.d_model, config.d_ff, config.n_heads, config.span);
    let (dh, fh) = (d / heads, f / heads);
    let model = seeded(&config, 51, &device);
    let Decoder::Can(dec) = &model.decoder else {
        panic!("CAN decoder expected")
    };
    let layer = &dec.layers[0];
    let (b, t, s_src) = (2, 6, 5);
    let src_lens = [5usize, 3];
    let x = seeded::normal([b, t, d], 52, &device);
    let states = seeded::normal([b, s_src, d], 53, &device);
    let key_mask =
        mnemo_core::key_padding_mask(batch(&src_lens, s_src, 54, false, &device), PAD as i64);
    let source = layer.attention.project_source(states.clone(), &key_mask);
    let got = host::to_vec(layer.forward(x.clone(), &source));

    let a = &layer.attention;
    let (wq, wk, wv) = (
        host_linear(&a.query),
        host_linear(&a.key),
        host_linear(&a.value),
    );
    let (wsk, wsv) = (host_linear(&a.source_key), host_linear(&a.source_value));
    let (up, down) = (host_linear(&a.up), host_linear(&a.down));
    let table: Vec<f64> = host::to_vec(a.positions.table.val())
        .into_iter()
        .map(f64::from)
        .collect();
    let rows = |v: Vec<f32>, width: usize| -> Vec<Vec<f64>> {
        v.chunks(width)
            .map(|r| r.iter().map(|&x| x as f64).collect())
            .collect()
    };
    let x_rows = rows(host::to_vec(x.clone()), d);
    let xn = rows(host::to_vec(layer.residual.norm.forward(x)), d); // x̂ = norm(x)
    let e = rows(host::to_vec(states), d);
    let scale = 1.0 / (dh as f64).sqrt();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (mut joint, mut apart) = (Vec::new(), Vec::new());
    for bi in 0..b {
        let keys: Vec<Vec<f64>> = (0..t).map(|i| host_apply(&xn[bi * t + i], &wk)).collect();
        let vals: Vec<Vec<f64>> = (0..t).map(|i| host_apply(&xn[bi * t + i], &wv)).collect();
        let src_keys: Vec<Vec<f64>> = (0..src_lens[bi])
            .map(|j| host_apply(&e[bi * s_src + j], &wsk))
            .collect();
        let src_vals: Vec<Vec<f64>> = (0..src_lens[bi])
            .map(|j| host_apply(&e[bi * s_src + j], &wsv))
            .collect();
        for ti in 0..t {
            let q = host_apply(&xn[bi * t + ti], &wq);
            let (mut a_joint, mut a_apart) = (Vec::new(), Vec::new());
            for hh in 0..heads {
                let qh = &q[hh * dh..(hh + 1) * dh];
                let kh = |k: &Vec<f64>| k[hh * dh..(hh + 1) * dh].to_vec();
                let vh = |v: &Vec<f64>| v[hh * fh..(hh + 1) * fh].to_vec();
                let own: Vec<usize> = (ti.saturating_sub(span - 1)..=ti).collect();
                let own_scores: Vec<f64> = own
                    .iter()
                    .map(|&i| {
                        let p = &table[(ti - i) * dh..(ti - i + 1) * dh];
                        (dot(qh, &kh(&keys[i])) + dot(qh, p)) * scale
                    })
                    .collect();
                let own_vals: Vec<Vec<f64>> = own.iter().map(|&i| vh(&vals[i])).collect();
                let src_scores: Vec<f64> =
                    src_keys.iter().map(|k| dot(qh, &kh(k)) * scale).collect();
                let src_v: Vec<Vec<f64>> = src_vals.iter().map(vh).collect();
                let all_scores = [own_scores.clone(), src_scores.clone()].concat();
                let all_vals = [own_vals.clone(), src_v.clone()].concat();
                a_joint.extend(host_softmax_sum(&all_scores, &all_vals));
                let two = host_softmax_sum(&own_scores, &own_vals)
                    .into_iter()
                    .zip(host_softmax_sum(&src_scores, &src_v))
                    .map(|(x, y)| x + y);
                a_apart.extend(two);
            }
            let w1x = host_apply(&xn[bi * t + ti], &up);
            let out = |a: Vec<f64>| -> Vec<f64> {
                let hidden: Vec<f64> = a.iter().zip(&w1x).map(|(x, y)| host_gelu(x + y)).collect();
                host_apply(&hidden, &down)
                    .into_iter()
                    .zip(&x_rows[bi * t + ti])
                    .map(|(y, x)| y + x)
                    .collect()
            };
            joint.extend(out(a_joint));
            apart.extend(out(a_apart));
        }
    }
    let max_diff = |want: &[f64]| {
        got.iter()
            .zip(want)
            .map(|(&g, &w)| (g as f64 - w).abs())
            .fold(0.0, f64::max)
    };
    let one = max_diff(&joint);
    assert!(one < 1e-4, "one-softmax reference differs by {one}");
    let two = max_diff(&apart);
    assert!(
        two > 1e-2,
        "two softmaxes give the same output (differ by {two}): the test cannot tell them apart"
    );
}

/// A CAN layer holds one norm, three `D -> D` maps (query, target key, source key), three
/// `D -> F` maps (target value, source value, W_1), W_2 and S·Dh position terms; a Transformer
/// decoder layer two attentions, an FFN, the same position terms and three norms. Nothing else
/// in the model differs.
#[test]
fn can_parameter_count_follows_its_formula() {
    let device = mnemo_backend::test_device().inner();
    let can = Seq2SeqConfig::tiny(VOCAB, DecoderKind::Can);
    let transformer = Seq2SeqConfig::tiny(VOCAB, DecoderKind::Transformer);
    let (d, f, s, dh, l) = (
        can.d_model,
        can.d_ff,
        can.span,
        can.d_model / can.n_heads,
        can.decoder_layers,
    );
    let model = can.init(&device);
    let Decoder::Can(dec) = &model.decoder else {
        panic!("CAN decoder expected")
    };
    let norm = dec.layers[0].residual.num_params();
    assert_eq!(norm, 2 * d, "LayerNorm: gain and bias");
    let can_layer = 3 * (d * d + d) + 3 * (d * f + f) + (f * d + d) + s * dh + norm;
    let transformer_layer = 8 * (d * d + d) + (d * f + f) + (f * d + d) + s * dh + 3 * norm;
    assert_eq!(dec.layers[0].num_params(), can_layer);
    assert_eq!(can.num_params(), model.num_params());
    assert_eq!(
        transformer.num_params() as i64 - can.num_params() as i64,
        l as i64 * (transformer_layer as i64 - can_layer as i64)
    );
}
