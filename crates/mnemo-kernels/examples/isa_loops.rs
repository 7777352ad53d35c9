//! Best-of-15 time of the element-wise kernels (GELU in place, log-softmax of 4,096-wide rows)
//! over 4 Mi values on every instruction set this CPU supports: a wider instruction set should
//! be clearly faster, which shows that `on_isa!` compiled the loops for it (a wrapper that
//! failed to inline its loop once left the log-softmax as slow on AVX-512 as portable).
//!
//! `cargo run --release -p mnemo-kernels --example isa_loops`
use mnemo_kernels::{Isa, gelu_in_place, log_softmax_rows};
use std::time::Instant;

/// Best of 15 runs of `f` over fresh copies of `base`, in milliseconds.
fn best_ms(base: &[f32], f: impl Fn(&mut [f32])) -> f64 {
    (0..15)
        .map(|_| {
            let mut x = base.to_vec();
            let t = Instant::now();
            f(&mut x);
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let n = 1 << 22;
    let base: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 10007) as f32 / 1000.0 - 5.0)
        .collect();
    for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
        if !isa.supported() {
            continue;
        }
        let gelu = best_ms(&base, |x| gelu_in_place(isa, x));
        let lsm = best_ms(&base, |x| log_softmax_rows(isa, x, 4096));
        println!("{isa:?}: gelu {gelu:.2} ms, log_softmax {lsm:.2} ms");
    }
}
