//! Times the window kernels (forward, backward, key/value accumulation) per instruction set at
//! the shapes of a Feedback training step: the peer LM config (`mnemo bench`: B 8 × H 4 rows,
//! span 128, head 64, segment 128) and the translation decoder of
//! `experiments/translation/en-es-longer.toml` (64 sentences × 4 heads, span 256, head 32,
//! 240 of the 256 slots folded zeros). Prints the median of nine rounds of one segment's
//! windows per kernel, in ms.
//!
//!     cargo run --release -p mnemo-kernels --example window_kernels
use mnemo_kernels::{
    Isa, Window, WindowGrads, WindowShape, WindowTerm, ZeroSlots, window_accumulate, window_attend,
    window_attend_backward,
};
use std::time::Instant;

/// A deterministic pseudo-random buffer in [-0.5, 0.5).
fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761);
            (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

/// Median of nine timed rounds of `f` (after one warm-up), in ms.
fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[4]
}

/// One case: the shape, the steps of a segment, and how many of a window's slots are folded.
struct Case {
    name: &'static str,
    rows: usize,
    span: usize,
    dh: usize,
    steps: usize,
    folded: usize,
}

fn main() {
    let cases = [
        Case {
            name: "peer LM (I 32, S 128, Dh 64, T 128)",
            rows: 32,
            span: 128,
            dh: 64,
            steps: 128,
            folded: 0,
        },
        Case {
            name: "translation (I 256, S 256, Dh 32, T 16, 240 folded)",
            rows: 256,
            span: 256,
            dh: 32,
            steps: 16,
            folded: 240,
        },
    ];
    let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2, Isa::Portable]
        .into_iter()
        .filter(|i| i.supported())
        .collect();
    for c in &cases {
        let shape = WindowShape {
            rows: c.rows,
            slots: c.span + c.steps,
            span: c.span,
            dh: c.dh,
        };
        let n = c.rows * shape.slots * c.dh;
        let (keys, vals, pos) = (values(n, 1), values(n, 2), values(c.span * c.dh, 3));
        let (k0, v0) = (values(c.rows * c.dh, 4), values(c.rows * c.dh, 5));
        let q = values(c.rows * c.dh, 6);
        let d_out = values(c.rows * c.dh, 7);
        println!("{}:", c.name);
        for &isa in &isas {
            let window = |t: usize| Window {
                isa,
                shape,
                start: t,
                scale: 1.0 / (c.dh as f32).sqrt(),
                keys: &keys,
                values: &vals,
                pos: Some(&pos),
                zeros: (c.folded > t).then(|| ZeroSlots {
                    count: c.folded - t,
                    keys: &k0,
                    values: &v0,
                }),
            };
            let mut probs = vec![0.0; c.rows * c.span * c.steps];
            let mut out = vec![0.0; c.rows * c.dh];
            let attend = median_ms(|| {
                for (t, p) in probs.chunks_exact_mut(c.rows * c.span).enumerate() {
                    window_attend(&window(t), &q, p, &mut out);
                }
            });
            let mut dq = vec![0.0; c.rows * c.dh];
            let mut dscores = vec![0.0; c.rows * c.span * c.steps];
            let backward = median_ms(|| {
                let pairs = probs
                    .chunks_exact(c.rows * c.span)
                    .zip(dscores.chunks_exact_mut(c.rows * c.span));
                for (t, (p, ds)) in pairs.enumerate() {
                    let g = WindowGrads {
                        dq: &mut dq,
                        dscores: ds,
                    };
                    window_attend_backward(&window(t), p, &d_out, g);
                }
            });
            let terms: Vec<WindowTerm> = dscores
                .chunks_exact(c.rows * c.span)
                .enumerate()
                .map(|(t, coeff)| WindowTerm {
                    start: t,
                    folded: c.folded.saturating_sub(t),
                    coeff,
                    vec: &q,
                })
                .collect();
            let mut buf = vec![0.0; n];
            let accumulate = median_ms(|| window_accumulate(isa, shape, &terms, &mut buf));
            println!(
                "  {isa:?}: attend {attend:.2} ms, backward {backward:.2} ms, accumulate {accumulate:.2} ms"
            );
        }
    }
}
