//! Cached decoding equals teacher forcing, the target is causal, source padding is invisible,
//! and autodiff gradients match finite differences, for every decoder kind and encoder mixing.
use super::*;

#[test]
fn incremental_steps_equal_teacher_forcing() {
    for_each_model(configs(), seeded_with(1), |name, model, device| {
        let src = batch(&[6, 3, 5], 7, 1, false, device);
        let tgt_in = batch(&[9, 9, 9], 9, 2, true, device);
        let forward = model.forward(src.clone(), tgt_in.clone());
        assert_eq!(forward.dims(), [3, 9, VOCAB]);
        let diff = max_abs_diff(forward, stepped(&model, src, tgt_in));
        assert!(
            diff < 1e-4,
            "{name}: cached steps differ from forward by {diff}"
        );
    });
}

#[test]
fn target_is_causal() {
    for_each_model(configs(), seeded_with(2), |name, model, device| {
        let src = batch(&[5, 4], 5, 3, false, device);
        let x = batch(&[8, 8], 8, 4, true, device);
        let y = x
            .clone()
            .slice_assign([0..2, 5..8], batch(&[3, 3], 3, 5, false, device));
        let (a, b) = (model.forward(src.clone(), x), model.forward(src, y));
        assert_causal(name, a, b, 5);
    });
}

#[test]
fn source_padding_is_invisible() {
    for_each_model(configs(), seeded_with(3), |name, model, device| {
        let src = batch(&[6, 3], 6, 6, false, device);
        let tgt_in = batch(&[5, 5], 5, 7, true, device);
        let base = model.forward(src.clone(), tgt_in.clone());
        // Extra PAD columns.
        let wide = Tensor::cat(vec![src.clone(), Tensor::zeros([2, 3], device)], 1);
        let d = max_abs_diff(base.clone(), model.forward(wide, tgt_in.clone()));
        assert!(
            d < 1e-5,
            "{name}: extra PAD columns changed the logits by {d}"
        );
        // Row 1 alone, unpadded, equals row 1 of the padded batch.
        let alone = model.forward(
            src.clone().slice([1..2, 0..3]),
            tgt_in.clone().slice([1..2, 0..5]),
        );
        let d = max_abs_diff(base.clone().slice([1..2, 0..5]), alone);
        assert!(d < 1e-5, "{name}: padding row 1 changed its logits by {d}");
        // A real source token does matter.
        let changed = src.clone().slice_assign(
            [1..2, 0..1],
            Tensor::from_data(TensorData::new(vec![4i64], [1, 1]), device),
        );
        let changed = if src.clone().slice([1..2, 0..1]).into_scalar::<i64>() == 4 {
            src.clone().slice_assign(
                [1..2, 0..1],
                Tensor::from_data(TensorData::new(vec![5i64], [1, 1]), device),
            )
        } else {
            changed
        };
        let what = format!("{name}: the source token");
        assert_differs(&what, base, model.forward(changed, tgt_in), 1e-4);
    });
}

/// Autodiff gradients of a few encoder and decoder weights match central finite differences,
/// with the attention encoder and (through layer 1's Fourier mixing to layer 0) the Fourier one.
#[test]
fn gradients_reach_encoder_and_decoder_weights() {
    let device = mnemo_backend::test_device();
    let plain = device.clone().inner();
    for (kind, mixing) in [
        (DecoderKind::Transformer, TokenMixing::Attention),
        (DecoderKind::Feedback, TokenMixing::Attention),
        (DecoderKind::Transformer, TokenMixing::Fourier),
        (DecoderKind::Can, TokenMixing::Attention),
    ] {
        let config = Seq2SeqConfig {
            mixing,
            ..Seq2SeqConfig::tiny(VOCAB, kind)
        };
        let model = seeded(&config, 6, &device);
        let src = batch(&[5, 3], 5, 16, false, &plain);
        let tgt = batch(&[6, 6], 6, 17, true, &plain);
        let probe = seeded::normal([2, 6, VOCAB], 42, &plain);
        let loss = |m: &Seq2Seq, dev: &Device| {
            (m.forward(src.clone().to_device(dev), tgt.clone().to_device(dev))
                * probe.clone().to_device(dev))
            .sum()
        };
        let grads = loss(&model, &device).backward();
        let base = model.valid();
        type Pick = fn(&Seq2Seq) -> burn::module::Param<Tensor<2>>;
        type Put = fn(Seq2Seq, burn::module::Param<Tensor<2>>) -> Seq2Seq;
        let cases: Vec<(&str, Pick, Put)> = vec![
            (
                "encoder 0 value",
                |m| m.encoder[0].attn.as_ref().unwrap().value.weight.clone(),
                |mut m, p| {
                    m.encoder[0].attn.as_mut().unwrap().value.weight = p;
                    m
                },
            ),
            (
                "encoder 0 ff.down",
                |m| m.encoder[0].ff.down.weight.clone(),
                |mut m, p| {
                    m.encoder[0].ff.down.weight = p;
                    m
                },
            ),
            (
                "encoder 1 ff.up",
                |m| m.encoder[1].ff.up.weight.clone(),
                |mut m, p| {
                    m.encoder[1].ff.up.weight = p;
                    m
                },
            ),
            (
                "decoder 0 cross query (CAN: source key)",
                |m| match &m.decoder {
                    Decoder::Transformer(d) => d.layers[0].cross.attention.query.weight.clone(),
                    Decoder::Feedback(d) => d.cross[0].attention.query.weight.clone(),
                    Decoder::Can(d) => d.layers[0].attention.source_key.weight.clone(),
                },
                |mut m, p| {
                    match &mut m.decoder {
                        Decoder::Transformer(d) => d.layers[0].cross.attention.query.weight = p,
                        Decoder::Feedback(d) => d.cross[0].attention.query.weight = p,
                        Decoder::Can(d) => d.layers[0].attention.source_key.weight = p,
                    }
                    m
                },
            ),
            (
                "decoder 1 self/memory query",
                |m| match &m.decoder {
                    Decoder::Transformer(d) => d.layers[1].self_attn.query.weight.clone(),
                    Decoder::Feedback(d) => d.core.layers[1].query.weight.clone(),
                    Decoder::Can(d) => d.layers[1].attention.query.weight.clone(),
                },
                |mut m, p| {
                    match &mut m.decoder {
                        Decoder::Transformer(d) => d.layers[1].self_attn.query.weight = p,
                        Decoder::Feedback(d) => d.core.layers[1].query.weight = p,
                        Decoder::Can(d) => d.layers[1].attention.query.weight = p,
                    }
                    m
                },
            ),
            (
                "decoder 0 target value (CAN; the others: ff.up)",
                |m| match &m.decoder {
                    Decoder::Transformer(d) => d.layers[0].ff.up.weight.clone(),
                    Decoder::Feedback(d) => d.core.layers[0].ff.up.weight.clone(),
                    Decoder::Can(d) => d.layers[0].attention.value.weight.clone(),
                },
                |mut m, p| {
                    match &mut m.decoder {
                        Decoder::Transformer(d) => d.layers[0].ff.up.weight = p,
                        Decoder::Feedback(d) => d.core.layers[0].ff.up.weight = p,
                        Decoder::Can(d) => d.layers[0].attention.value.weight = p,
                    }
                    m
                },
            ),
        ];
        for (label, pick, put) in cases {
            if mixing == TokenMixing::Fourier && label == "encoder 0 value" {
                continue; // no attention
            }
            let kind = format!("{kind:?} {mixing:?}");
            let analytic: Vec<f32> = pick(&model)
                .val()
                .grad(&grads)
                .expect(label)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let [rows, cols] = pick(&base).val().dims();
            for &(i, j) in &[(0usize, 1usize), (rows / 2, cols - 1), (rows - 1, cols / 2)] {
                let eps = 1e-2f32;
                let shifted = |delta: f32| {
                    let mut e = vec![0.0f32; rows * cols];
                    e[i * cols + j] = delta;
                    let bump = Tensor::<2>::from_data(TensorData::new(e, [rows, cols]), &plain);
                    let p = pick(&base).map(|w| w + bump);
                    loss(&put(base.clone(), p), &plain).into_scalar::<f64>()
                };
                let numeric = ((shifted(eps) - shifted(-eps)) / (2.0 * eps as f64)) as f32;
                let a = analytic[i * cols + j];
                assert!(
                    (numeric - a).abs() < 2e-2 * (1.0 + a.abs()),
                    "{kind} {label}[{i},{j}]: finite difference {numeric} vs autodiff {a}"
                );
            }
            assert!(
                analytic.iter().any(|g| g.abs() > 1e-4),
                "{kind} {label}: zero gradient"
            );
        }
    }
}
