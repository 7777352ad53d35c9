//! Rollout collection: determinism for a fixed seed, the start/done bookkeeping a memory
//! policy relies on, and minibatches of whole env rows.
use mnemo_rl::env::{EnvConfig, EnvKind, EpisodeInfo, MazeConfig, TMazeConfig};
use mnemo_rl::rollout::{PolicyOutput, Rollout, env_minibatches};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Two rollouts of `steps` from a fresh environment, acting with a seeded random policy.
fn collect(config: &EnvConfig, steps: usize, policy_seed: u64) -> (Vec<Rollout>, Vec<EpisodeInfo>) {
    let mut env = config.build().unwrap();
    let mut current = env.step_buffer();
    env.observe(&mut current.obs);
    let mut policy = ChaCha8Rng::seed_from_u64(policy_seed);
    let n_actions = env.n_actions();
    let mut rollouts = Vec::new();
    let mut episodes = Vec::new();
    for _ in 0..2 {
        let mut rollout = Rollout::new(steps, env.len(), env.obs_dim());
        episodes.extend(rollout.collect(
            &mut env,
            &mut current,
            |obs, starts, out: PolicyOutput| {
                for i in 0..starts.len() {
                    out.actions[i] = policy.random_range(0..n_actions);
                    out.log_probs[i] = -(n_actions as f32).ln();
                    out.values[i] = obs[i * (obs.len() / starts.len())];
                }
            },
        ));
        rollouts.push(rollout);
    }
    (rollouts, episodes)
}

fn configs() -> [EnvConfig; 2] {
    [
        EnvConfig {
            n_envs: 6,
            seed: 3,
            kind: EnvKind::TMaze(TMazeConfig::new(4)),
        },
        EnvConfig {
            n_envs: 6,
            seed: 3,
            kind: EnvKind::Maze(MazeConfig {
                size: 7,
                view: 3,
                max_steps: 25,
            }),
        },
    ]
}

#[test]
fn rollouts_are_deterministic_for_a_fixed_seed() {
    for config in configs() {
        let (a, ea) = collect(&config, 32, 9);
        let (b, eb) = collect(&config, 32, 9);
        assert_eq!(a, b);
        assert_eq!(ea, eb);
        assert!(!ea.is_empty());
        let (c, _) = collect(&config, 32, 10);
        assert_ne!(a, c, "a different policy seed changes the rollout");
    }
}

#[test]
fn starts_follow_dones_across_rollouts() {
    for config in configs() {
        let (rollouts, episodes) = collect(&config, 20, 1);
        let n = config.n_envs;
        let starts: Vec<bool> = rollouts
            .iter()
            .flat_map(|r| r.acted.starts.clone())
            .collect();
        let dones: Vec<bool> = rollouts.iter().flat_map(|r| r.dones.clone()).collect();
        assert!(
            starts[..n].iter().all(|&s| s),
            "a fresh env starts every row"
        );
        assert_eq!(
            &starts[n..],
            &dones[..dones.len() - n],
            "starts[t + 1] == dones[t]"
        );
        assert_eq!(dones.iter().filter(|&&d| d).count(), episodes.len());
    }
}

#[test]
fn minibatches_keep_whole_rows() {
    let config = &configs()[1];
    let (rollouts, _) = collect(config, 16, 2);
    let rollout = &rollouts[1];
    let g = rollout.gae(&[0.0; 6], 0.99, 0.95);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let sets = env_minibatches(6, 3, &mut rng);
    let d = rollout.obs_dim();
    for set in sets {
        let mb = rollout.minibatch(&set, &g);
        assert_eq!(mb.acted.obs.len(), set.len() * 16 * d);
        for (b, &e) in set.iter().enumerate() {
            for t in 0..16 {
                let k = t * 6 + e;
                let j = b * 16 + t;
                assert_eq!(
                    mb.acted.obs[j * d..(j + 1) * d],
                    rollout.acted.obs[k * d..(k + 1) * d]
                );
                assert_eq!(mb.acted.actions[j], rollout.acted.actions[k]);
                assert_eq!(mb.gae.advantages[j], g.advantages[k]);
                assert_eq!(mb.acted.starts[j], rollout.acted.starts[k]);
            }
        }
    }
}
