//! The products of one batch-1 decoding step of the peer config (D 256, FFN 1024, 4 layers:
//! query, output, FFN up and down per layer, the memory key and value, the head), alone and in
//! sequence, each on `PackedMatrix::matmul` with its hand-off to the helper thread: the part of
//! a decoding step that streams the weights (docs/performance.md, "What limits `fb_gen_b1`").
//!
//!     cargo run --release -p mnemo-kernels --example decode_products
//!     cargo run --release -p mnemo-kernels --example decode_products -- 8   # a training step's
use mnemo_kernels::PackedMatrix;
use std::time::Instant;

fn main() {
    let (d, f, layers) = (256usize, 1024usize, 4u32);
    let matrix = |k: usize, n: usize, seed: u32| {
        let values: Vec<f32> = (0..k * n)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (h % 1000) as f32 * 1e-4 - 0.05
            })
            .collect();
        PackedMatrix::new(&values, k, n)
    };
    let mut products = Vec::new();
    for l in 0..layers {
        products.push(matrix(d, d, 10 * l)); // query
        products.push(matrix(d, d, 10 * l + 1)); // output
        products.push(matrix(d, f, 10 * l + 2)); // FFN up
        products.push(matrix(f, d, 10 * l + 3)); // FFN down
    }
    for seed in [100, 101, 102] {
        products.push(matrix(d, d, seed)); // memory key, value; the head
    }
    let weights: usize = products.iter().map(|m| m.k() * m.n()).sum();
    let rows: usize = std::env::args()
        .nth(1)
        .map_or(1, |r| r.parse().expect("rows: a number"));
    if rows > 1 {
        return training_step_products(&products[..products.len() - 1], rows, f);
    }
    let (mut x, mut out) = (vec![0.01f32; f], vec![0.0f32; f]);
    let mut times = Vec::new();
    for _ in 0..600 {
        let t = Instant::now();
        for m in &products {
            let (k, n) = (m.k(), m.n());
            m.matmul(&x[..k], &mut out[..n], 1);
            x[..n].copy_from_slice(&out[..n]);
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{} products, {:.2} M weights ({:.1} MB): median {:.1} us a token over {} tokens",
        products.len(),
        weights as f64 / 1e6,
        weights as f64 * 4.0 / 1e6,
        times[times.len() / 2] * 1e6,
        times.len()
    );
}

/// The per-step products of exact training (`cargo run ... --example decode_products -- 8`):
/// each step multiplies `rows` rows by every matrix of the step (the head excepted: it runs
/// once per segment) in the forward and by its transpose in the backward (`dy · Wᵀ`); the
/// weight gradients are not per step. What one step of `fb_train_chunk1` costs at the least.
fn training_step_products(products: &[PackedMatrix], rows: usize, f: usize) {
    // Wᵀ packed as the backward's products read it: `[n, k]`.
    let transposed: Vec<PackedMatrix> = products
        .iter()
        .map(|m| {
            let (k, n) = (m.k(), m.n());
            let mut eye = vec![0.0f32; k * k];
            (0..k).for_each(|i| eye[i * k + i] = 1.0);
            let mut w = vec![0.0f32; k * n];
            m.matmul(&eye, &mut w, k); // W itself, row-major [k, n]
            PackedMatrix::from_transposed(&w, n, k)
        })
        .collect();
    let (mut x, mut out) = (vec![0.01f32; rows * f], vec![0.0f32; rows * f]);
    let flops: usize = products.iter().map(|m| 2 * 2 * rows * m.k() * m.n()).sum();
    let mut times = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        for m in products.iter().chain(&transposed) {
            let (k, n) = (m.k(), m.n());
            m.matmul(&x[..rows * k], &mut out[..rows * n], rows);
            x[..rows * n].copy_from_slice(&out[..rows * n]);
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{} products forward and {} backward of {rows} rows: median {:.1} us a step, {:.1} GFLOP/s",
        products.len(),
        transposed.len(),
        median * 1e6,
        flops as f64 / median / 1e9
    );
}
