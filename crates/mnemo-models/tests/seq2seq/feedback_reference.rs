//! The Feedback decoder against a naive re-implementation from DESIGN.md §4 plus
//! cross-attention: logits and gradients.
use super::*;

/// The Feedback decoder written out op by op from DESIGN.md §4 plus cross-attention: a list of
/// memories (S zero memories first), the last S concatenated and re-projected at every step.
fn naive_feedback_logits(
    model: &Seq2Seq,
    src: Tensor<2, Int>,
    tgt_in: Tensor<2, Int>,
) -> Tensor<3> {
    let Decoder::Feedback(dec) = &model.decoder else {
        panic!("feedback decoder expected")
    };
    let enc = model.encode(src);
    let [b, t_len] = tgt_in.dims();
    let d = model.embedding.weight.dims()[1];
    let s = dec.core.span;
    let heads = dec.core.layers[0].n_heads;
    let dh = d / heads;
    let device = enc.states.device();
    let emb = model
        .embedding
        .forward(tgt_in)
        .mul_scalar((d as f32).sqrt());
    let w = softmax(dec.core.mix.val(), 0);
    let mut mems: Vec<Tensor<3>> = (0..s).map(|_| Tensor::zeros([b, 1, d], &device)).collect();
    // Additive source mask: -1e9 at padding, per row.
    let src_bias = enc.key_mask.clone().float().mul_scalar(-1.0e9); // [B,1,1,S_src]
    let split = |x: Tensor<3>| {
        let n = x.dims()[1];
        x.reshape([b, n, heads, dh]).swap_dims(1, 2)
    };
    let merge = |x: Tensor<4>| {
        let n = x.dims()[2];
        x.swap_dims(1, 2).reshape([b, n, d])
    };
    let mut tops = Vec::new();
    for t in 0..t_len {
        let window = Tensor::cat(mems[mems.len() - s..].to_vec(), 1); // [B,S,D]
        let mut h = emb.clone().narrow(1, t, 1);
        let mut m = h.clone() * w.clone().narrow(0, 0, 1).reshape([1, 1, 1]);
        for (l, (fl, cross)) in dec.core.layers.iter().zip(&dec.cross).enumerate() {
            let (cross_norm, cross) = (&cross.residual.norm, &cross.attention);
            let proj = &dec.core.memory_projections[if dec.core.memory_projections.len() == 1 {
                0
            } else {
                l
            }];
            let mn = proj.norm.as_ref().unwrap().forward(window.clone());
            let (k, v) = (
                split(proj.key.forward(mn.clone())),
                split(proj.value.forward(mn)),
            );
            let table = fl.positions.as_ref().unwrap().table.val();
            let p = Tensor::cat(
                (0..s)
                    .map(|j| table.clone().narrow(0, s - j - 1, 1))
                    .collect(),
                0,
            ); // [S,Dh]
            let self_attn = |x: Tensor<3>| {
                let q = split(fl.query.forward(x));
                let scores = q
                    .matmul((k.clone() + p.clone().unsqueeze::<4>()).swap_dims(2, 3))
                    .div_scalar((dh as f32).sqrt());
                fl.output
                    .forward(merge(softmax(scores, 3).matmul(v.clone())))
            };
            let cross_attn = |x: Tensor<3>| {
                let q = split(cross.query.forward(x));
                let ks = split(cross.key.forward(enc.states.clone()));
                let vs = split(cross.value.forward(enc.states.clone()));
                let scores =
                    q.matmul(ks.swap_dims(2, 3)).div_scalar((dh as f32).sqrt()) + src_bias.clone();
                cross.output.forward(merge(softmax(scores, 3).matmul(vs)))
            };
            h = if fl.attn_residual.is_pre() {
                let h = h.clone() + self_attn(fl.attn_residual.norm.forward(h));
                let h = h.clone() + cross_attn(cross_norm.forward(h));
                h.clone() + fl.ff.forward(fl.ff_residual.norm.forward(h))
            } else {
                let h = fl.attn_residual.norm.forward(h.clone() + self_attn(h));
                let h = cross_norm.forward(h.clone() + cross_attn(h));
                fl.ff_residual.norm.forward(h.clone() + fl.ff.forward(h))
            };
            m = m + h.clone() * w.clone().narrow(0, l + 1, 1).reshape([1, 1, 1]);
        }
        tops.push(h);
        mems.push(m);
    }
    let h = final_norm(&dec.final_norm, Tensor::cat(tops, 1));
    h.matmul(model.embedding.weight.val().transpose().unsqueeze::<3>())
}

#[test]
fn feedback_decoder_equals_naive_reference_forward_and_gradients() {
    let device = mnemo_backend::test_device();
    for (name, config) in configs()
        .into_iter()
        .filter(|(n, _)| n.starts_with("feedback"))
    {
        for layers in [1, config.decoder_layers] {
            let config = Seq2SeqConfig {
                decoder_layers: layers,
                ..config.clone()
            };
            let model = seeded(&config, 4, &device);
            let model = with_mixed_memory(model, 40 + layers as u64);
            let src = batch(&[5, 3], 5, 8, false, &device);
            let tgt_in = batch(&[7, 7], 7, 9, true, &device);
            let probe = seeded::normal([2, 7, VOCAB], 41, &device);
            let fast = model.forward(src.clone(), tgt_in.clone());
            let slow = naive_feedback_logits(&model, src, tgt_in);
            let diff = max_abs_diff(fast.clone(), slow.clone());
            assert!(
                diff < 1e-5 * (1.0 + max_abs(fast.clone())),
                "{name} L={layers}: logits differ by {diff}"
            );
            let g_fast = (fast * probe.clone()).sum().backward();
            let g_slow = (slow * probe).sum().backward();
            let Decoder::Feedback(dec) = &model.decoder else {
                unreachable!()
            };
            let compare = |label: String, p: Tensor<2>| {
                let a = p.grad(&g_fast).expect("fast grad");
                let b = p.grad(&g_slow).expect("slow grad");
                let scale = 1.0 + max_abs(b.clone());
                let diff = max_abs_diff(a.clone(), b);
                assert!(
                    diff < 1e-4 * scale,
                    "{name} L={layers}: grad of {label} differs by {diff}"
                );
                assert!(
                    max_abs(a) > 0.0,
                    "{name} L={layers}: grad of {label} is zero"
                );
            };
            compare("embedding".into(), model.embedding.weight.val());
            compare(
                "encoder 0 query".into(),
                model.encoder[0].attn.as_ref().unwrap().query.weight.val(),
            );
            for (l, (layer, cross)) in dec.core.layers.iter().zip(&dec.cross).enumerate() {
                compare(format!("layer {l} memory query"), layer.query.weight.val());
                compare(
                    format!("layer {l} positions"),
                    layer.positions.as_ref().unwrap().table.val(),
                );
                compare(
                    format!("layer {l} cross key"),
                    cross.attention.key.weight.val(),
                );
                compare(format!("layer {l} ff.down"), layer.ff.down.weight.val());
            }
            for (i, p) in dec.core.memory_projections.iter().enumerate() {
                compare(format!("projection {i} key"), p.key.weight.val());
                compare(format!("projection {i} value"), p.value.weight.val());
            }
            let (a, b) = (
                dec.core.mix.val().grad(&g_fast).unwrap(),
                dec.core.mix.val().grad(&g_slow).unwrap(),
            );
            let diff = max_abs_diff(a.clone(), b);
            assert!(
                diff < 1e-4 * (1.0 + max_abs(a)),
                "{name} L={layers}: mix grad differs by {diff}"
            );
        }
    }
}
