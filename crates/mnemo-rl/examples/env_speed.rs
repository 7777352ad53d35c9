//! Steps per second of the environments alone (no policy): uniformly random actions from a
//! pre-drawn table, through `VecEnv::step` (auto-reset and observation writing included).
//!
//! ```text
//! cargo run -p mnemo-rl --release --example env_speed
//! ```
use std::time::Instant;

use mnemo_rl::env::{EnvConfig, EnvKind, MazeConfig, TMazeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Env steps per second (copies × vector steps / seconds) over about `budget_s` seconds.
fn measure(kind: &EnvKind, n_envs: usize, threshold: usize, budget_s: f64) -> f64 {
    let config = EnvConfig {
        n_envs,
        seed: 0,
        kind: kind.clone(),
    };
    let mut env = config.build().unwrap().with_parallel_threshold(threshold);
    let mut out = env.step_buffer();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let table: Vec<usize> = (0..n_envs * 64)
        .map(|_| rng.random_range(0..env.n_actions()))
        .collect();
    let mut steps = 0usize;
    let start = Instant::now();
    loop {
        for chunk in table.chunks(n_envs) {
            env.step(chunk, &mut out);
        }
        steps += 64;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= budget_s {
            return (steps * n_envs) as f64 / elapsed;
        }
    }
}

fn main() {
    let kinds = [
        ("tmaze L=10", EnvKind::TMaze(TMazeConfig::default())),
        (
            "maze 9x9 view 5",
            EnvKind::Maze(MazeConfig {
                size: 9,
                view: 5,
                max_steps: 256,
            }),
        ),
        (
            "maze 15x15 view 5",
            EnvKind::Maze(MazeConfig {
                size: 15,
                view: 5,
                max_steps: 256,
            }),
        ),
    ];
    println!("| env | N | serial steps/s | rayon steps/s |");
    println!("|---|---|---|---|");
    for (name, kind) in &kinds {
        for n in [1, 16, 256, 1024] {
            let serial = measure(kind, n, usize::MAX, 0.5);
            let parallel = measure(kind, n, 0, 0.5);
            println!("| {name} | {n} | {serial:.3e} | {parallel:.3e} |");
        }
    }
}
