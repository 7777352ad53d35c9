//! One AdamW update of a parameter in a single pass over its values, moments and gradient.
//!
//! burn's `AdamW` optimizer takes ten tensor operations per parameter (each a pass over memory
//! and a new buffer); on a CPU backend that was ~16 ms of a 160 ms Transformer training step
//! on one core (docs/performance.md). [`adamw_update`] computes the same update with the same
//! `f32` operations in the same order, so its results are bit for bit burn's:
//!
//! ```text
//! m ← m·β₁ + g·(1 − β₁)            (first step: m ← g·(1 − β₁))
//! v ← v·β₂ + (g·g)·(1 − β₂)        (first step: v ← (g·g)·(1 − β₂))
//! δ ← (m / c₁) / (√(v / c₂) + ε)   c₁ = 1 − β₁ᵗ, c₂ = 1 − β₂ᵗ
//! p ← p·keep − δ·lr                keep = 1 − lr·λ (p unchanged without weight decay)
//! ```
//!
//! Large parameters run half their values on the helper thread (`helper.rs`); each value is
//! computed alone, so the split changes nothing in the results.
use crate::Isa;
use crate::dispatch::on_isa;

/// The scalars of one AdamW step of one parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// First-moment decay β₁.
    pub beta1: f32,
    /// Second-moment decay β₂.
    pub beta2: f32,
    /// ε added to the square root of the corrected second moment.
    pub eps: f32,
    /// The step's number `t`; 1 is this parameter's first update, where the moments hold
    /// nothing yet and are written, not read.
    pub time: usize,
    /// Learning rate.
    pub lr: f32,
    /// `1 − lr·λ` for decoupled weight decay λ; `None` without weight decay.
    pub keep: Option<f32>,
}

/// Values per half below which a parameter is updated on the calling thread only.
const SPLIT_MIN: usize = 1 << 15;

/// Update parameter `p` with gradient `g` and moments `m`, `v` in place (see the
/// [module docs](self) for the formula).
///
/// # Shapes
/// - p, g, m, v: `[n]` (any parameter, flattened)
///
/// # Panics
/// If the slices differ in length.
pub fn adamw_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: &AdamWStep) {
    let n = p.len();
    assert!(
        g.len() == n && m.len() == n && v.len() == n,
        "parameter, gradient and moments must be equally long"
    );
    if n < 2 * SPLIT_MIN {
        return update(p, g, m, v, step);
    }
    let half = n / 2;
    let (p0, p1) = p.split_at_mut(half);
    let (m0, m1) = m.split_at_mut(half);
    let (v0, v1) = v.split_at_mut(half);
    let (g0, g1) = g.split_at(half);
    crate::helper::both(
        || update(p0, g0, m0, v0, step),
        || update(p1, g1, m1, v1, step),
    );
}

/// [`adamw_update`] on this thread, vectorised for this CPU's instruction set.
fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], step: &AdamWStep) {
    on_isa!(
        Isa::detect(),
        update_loop(
            p: &mut [f32],
            g: &[f32],
            m: &mut [f32],
            v: &mut [f32],
            step: &AdamWStep,
        )
    )
}

/// The update as plain loops (vectorised by the compiler; no fused multiply-adds, so each
/// operation rounds as burn's separate tensor operations do).
#[inline(always)]
fn update_loop(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamWStep) {
    let (f1, f2) = (1.0 - s.beta1, 1.0 - s.beta2);
    let t = s.time as i32;
    let (c1, c2) = (1f32 - s.beta1.powi(t), 1f32 - s.beta2.powi(t));
    let (b1, b2, eps, lr) = (s.beta1, s.beta2, s.eps, s.lr);
    let keep = s.keep;
    let first = s.time == 1;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let (mi, vi) = match first {
            true => (g * f1, (g * g) * f2),
            false => (*m * b1 + g * f1, *v * b2 + (g * g) * f2),
        };
        *m = mi;
        *v = vi;
        let delta = (mi / c1) / ((vi / c2).sqrt() + eps);
        let kept = match keep {
            Some(k) => *p * k,
            None => *p,
        };
        *p = kept - delta * lr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The update written as burn's sequence of whole-array operations, one after another.
    fn reference(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamWStep) {
        let (f1, f2) = (1.0 - s.beta1, 1.0 - s.beta2);
        let gm: Vec<f32> = g.iter().map(|g| g * f1).collect();
        let g2: Vec<f32> = g.iter().map(|g| g * g).map(|x| x * f2).collect();
        for i in 0..p.len() {
            m[i] = if s.time == 1 {
                gm[i]
            } else {
                m[i] * s.beta1 + gm[i]
            };
            v[i] = if s.time == 1 {
                g2[i]
            } else {
                v[i] * s.beta2 + g2[i]
            };
        }
        let t = s.time as i32;
        let mc: Vec<f32> = m.iter().map(|m| m / (1f32 - s.beta1.powi(t))).collect();
        let vc: Vec<f32> = v.iter().map(|v| v / (1f32 - s.beta2.powi(t))).collect();
        for i in 0..p.len() {
            let delta = mc[i] / (vc[i].sqrt() + s.eps);
            let kept = s.keep.map_or(p[i], |k| p[i] * k);
            p[i] = kept - delta * s.lr;
        }
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
                (x as f32 / (1u32 << 24) as f32 - 0.5) * 0.2
            })
            .collect()
    }

    /// Three steps (the first writes the moments), with and without weight decay, on a
    /// parameter small enough for one thread and one large enough to split: bit for bit the
    /// reference.
    #[test]
    fn equals_the_operation_by_operation_update() {
        for n in [1000, 3 * SPLIT_MIN + 7] {
            for keep in [None, Some(1.0 - 3e-4 * 0.1)] {
                let (mut p, mut m, mut v) = (values(n, 1), vec![0.0; n], vec![0.0; n]);
                let (mut rp, mut rm, mut rv) = (p.clone(), m.clone(), v.clone());
                for time in 1..=3 {
                    let g = values(n, 10 + time as u32);
                    let step = AdamWStep {
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                        time,
                        lr: 3e-4,
                        keep,
                    };
                    adamw_update(&mut p, &g, &mut m, &mut v, &step);
                    reference(&mut rp, &g, &mut rm, &mut rv, &step);
                    assert!(
                        p == rp && m == rm && v == rv,
                        "n {n}, {keep:?}, step {time}"
                    );
                }
                assert!(p != values(n, 1), "the parameter moved");
            }
        }
    }
}
