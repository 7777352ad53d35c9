//! A translation decoder's tied output head, `[rows, D] · Eᵀ` with `E` `[V, D]` (D 128, V
//! 8000, the en-es models), two ways: burn's `gemm` call on the transposed view of `E`
//! (`mnemo_kernels::product`, which packs `Eᵀ` at every call) and `PackedMatrix::matmul` on `Eᵀ`
//! packed once (what a decoding state does, `mnemo-models/src/tied_head.rs`); medians of 9
//! calls, after one warm-up, with the packing's own cost (docs/performance.md). Decoding's row
//! counts (a beam's hundreds of rows) are what it is for: its outputs come from the system
//! allocator, so at training's thousands of rows (64 MB outputs) every call pays fresh pages
//! that the `mnemo` binary's mimalloc reuses; there the trainer measured `gemm` the faster.
//!
//!     cargo run --release -p mnemo-kernels --example head_product -- 136   # rows (default 136)
use mnemo_kernels::{Operand, PackedMatrix, product};
use std::time::Instant;

/// Median milliseconds of 9 calls of `f`, after one.
fn median_ms<R>(f: impl Fn() -> R) -> f64 {
    std::hint::black_box(f());
    let mut ms: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[4]
}

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map_or(136, |r| r.parse().expect("rows: a number"));
    let (d, v) = (128usize, 8000usize);
    let value = |i: usize| ((i * 7919) % 1000) as f32 * 1e-4 - 0.05;
    let e: Vec<f32> = (0..v * d).map(value).collect(); // [V, D]
    let h: Vec<f32> = (0..rows * d).map(|i| value(31 * i + 7)).collect();
    let e_t = Operand {
        data: &e,
        rows: d,
        cols: v,
        row_stride: 1,
        col_stride: d as isize,
        offset: 0,
    };
    let gemm = median_ms(|| product(Operand::row_major(&h, rows, d), e_t));
    let pack = median_ms(|| PackedMatrix::from_transposed(&e, d, v));
    let packed = PackedMatrix::from_transposed(&e, d, v);
    // A fresh output per call, as `product` and the decoding state's head allocate theirs.
    let kernel = median_ms(|| {
        let mut out = vec![0.0f32; rows * v];
        packed.matmul(&h, &mut out, rows);
        out
    });
    println!(
        "{rows} rows · [{d}, {v}]: gemm on the transposed view {gemm:.3} ms, packed kernel \
         {kernel:.3} ms (packing once {pack:.3} ms)"
    );
}
