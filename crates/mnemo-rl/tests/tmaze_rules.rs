//! T-maze rules against an independent checker: the cue is visible at step 0 only, movement
//! along the corridor, the junction's +1/−1, the time limit; scripted policies.
use mnemo_rl::env::{Env, Heading, TMaze, TMazeConfig, env_rng};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CUE_UP: usize = 0;
const CUE_DOWN: usize = 1;
const CORRIDOR: usize = 2;
const JUNCTION: usize = 3;

fn obs_index(env: &TMaze) -> usize {
    let mut obs = vec![f32::NAN; env.obs_dim()];
    env.observe(&mut obs);
    assert_eq!(
        obs.iter().filter(|&&v| v == 1.0).count(),
        1,
        "one-hot: {obs:?}"
    );
    assert_eq!(obs.iter().filter(|&&v| v == 0.0).count(), obs.len() - 1);
    obs.iter().position(|&v| v == 1.0).unwrap()
}

#[test]
fn random_play_matches_the_rules() {
    let mut policy = ChaCha8Rng::seed_from_u64(11);
    for length in [1, 2, 5, 12] {
        let config = TMazeConfig {
            max_steps: Some(3 * length + 2),
            ..TMazeConfig::new(length)
        };
        let mut env = TMaze::new(&config, env_rng(5, length as u64));
        for _episode in 0..200 {
            // The checker's own state: position, steps, the cue read at step 0.
            let cue_obs = obs_index(&env);
            assert!(
                cue_obs == CUE_UP || cue_obs == CUE_DOWN,
                "step 0 shows the cue"
            );
            assert_eq!(cue_obs == CUE_UP, env.cue() == Heading::North);
            let (mut x, mut t) = (0usize, 0usize);
            loop {
                let action = policy.random_range(0..4);
                let step = env.step(action);
                t += 1;
                let turn = action == 0 || action == 2;
                if x == length && turn {
                    let correct = (action == 0) == (cue_obs == CUE_UP);
                    assert!(step.done && !step.truncated);
                    assert_eq!(step.reward, if correct { 1.0 } else { -1.0 });
                    assert_eq!(step.success, Some(correct));
                    break;
                }
                if action == 1 && x < length {
                    x += 1;
                }
                if action == 3 && x > 0 {
                    x -= 1;
                }
                assert_eq!(env.position(), x);
                if t == config.max_steps.unwrap() {
                    assert!(step.done && step.truncated);
                    assert_eq!((step.reward, step.success), (-1.0, Some(false)));
                    break;
                }
                assert_eq!((step.reward, step.done, step.success), (0.0, false, None));
                // After step 0 the cue never shows again, even back at the start.
                let seen = obs_index(&env);
                assert_eq!(seen, if x == length { JUNCTION } else { CORRIDOR });
            }
            env.reset();
        }
    }
}

/// Walk east to the junction, then turn (towards the cue when `follow_cue`, away otherwise).
fn scripted_episode(env: &mut TMaze, follow_cue: bool) -> (f32, Option<bool>, usize) {
    let cue = obs_index(env);
    let mut steps = 0;
    loop {
        let action = if obs_index(env) == JUNCTION {
            let up = (cue == CUE_UP) == follow_cue;
            if up { Heading::North } else { Heading::South }
        } else {
            Heading::East
        };
        let step = env.step(action.index());
        steps += 1;
        if step.done {
            return (step.reward, step.success, steps);
        }
    }
}

#[test]
fn remembering_the_cue_always_succeeds_and_the_wrong_turn_always_fails() {
    for length in [1, 10, 50] {
        let mut env = TMaze::new(&TMazeConfig::new(length), env_rng(1, 0));
        for _ in 0..100 {
            assert_eq!(
                scripted_episode(&mut env, true),
                (1.0, Some(true), length + 1)
            );
            env.reset();
            assert_eq!(
                scripted_episode(&mut env, false),
                (-1.0, Some(false), length + 1)
            );
            env.reset();
        }
    }
}

#[test]
fn without_memory_success_is_a_coin_flip() {
    let mut env = TMaze::new(&TMazeConfig::new(4), env_rng(2, 0));
    let episodes = 4000;
    let mut wins = 0;
    for _ in 0..episodes {
        // Always north at the junction: succeeds exactly when the cue was up.
        for _ in 0..4 {
            env.step(Heading::East.index());
        }
        wins += usize::from(env.step(Heading::North.index()).success == Some(true));
        env.reset();
    }
    let rate = wins as f64 / episodes as f64;
    assert!((0.46..0.54).contains(&rate), "cue up in {rate} of episodes");
}
