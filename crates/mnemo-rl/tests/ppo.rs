//! The PPO objective on a two-armed bandit: the gradient raises the probability of an action
//! with positive advantage, the clip stops the gradient once the ratio has moved past 1 ± ε
//! in the advantage's direction (A2C's equals it at ratio 1 and does not stop), and a few
//! updates solve the bandit. A2C's objective has PPO's
//! gradient at ratio 1 and ignores the clip; it solves the bandit too.
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use mnemo_core::host::to_vec;
use mnemo_core::seeded;
use mnemo_rl::ppo::{Algorithm, PpoConfig, PpoTargets, ppo_loss};
use mnemo_train::{OptimConfig, apply_update};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Module, Debug)]
struct Bandit {
    actor: Linear,
    critic: Linear,
}

impl Bandit {
    fn new(device: &Device) -> Self {
        seeded::reinit(
            Bandit {
                actor: LinearConfig::new(1, 2).init(device),
                critic: LinearConfig::new(1, 1).init(device),
            },
            3,
        )
    }

    /// Logits `[m, 2]` and values `[m]` of m pulls.
    fn forward(&self, m: usize, device: &Device) -> (Tensor<2>, Tensor<1>) {
        let x = Tensor::<2>::ones([m, 1], device);
        (
            self.actor.forward(x.clone()),
            self.critic.forward(x).reshape([m]),
        )
    }
}

fn config() -> PpoConfig {
    PpoConfig {
        value_coef: 0.0,
        entropy_coef: 0.0,
        normalize_advantages: false,
        ..PpoConfig::new(1)
    }
}

fn a2c_config() -> PpoConfig {
    PpoConfig {
        algorithm: Algorithm::A2c,
        epochs: 1,
        minibatches: 1,
        ..config()
    }
}

/// Gradient of the loss with respect to the actor's bias (one entry per arm).
fn bias_grad(bandit: &Bandit, targets: PpoTargets<'_>, device: &Device) -> Vec<f32> {
    bias_grad_of(bandit, targets, &config(), device)
}

fn bias_grad_of(
    bandit: &Bandit,
    targets: PpoTargets<'_>,
    config: &PpoConfig,
    device: &Device,
) -> Vec<f32> {
    let m = targets.actions.len();
    let (logits, values) = bandit.forward(m, device);
    let (loss, _) = ppo_loss(logits, values, targets, config);
    let grads = GradientsParams::from_grads(loss.backward(), bandit);
    let bias = bandit.actor.bias.as_ref().expect("bias");
    to_vec::<1>(grads.get(bias.id).expect("bias gradient"))
}

fn log_probs(bandit: &Bandit, device: &Device) -> Vec<f32> {
    let (logits, _) = bandit.forward(1, device);
    to_vec(softmax(logits, 1).log())
}

#[test]
fn gradient_raises_an_advantaged_action_and_the_clip_stops_it() {
    let device = mnemo_backend::test_device();
    let bandit = Bandit::new(&device);
    let lp = log_probs(&bandit, &device);
    // Arm 1 pulled with advantage +1, arm 0 with −1, at the current policy (ratio 1).
    let targets = PpoTargets {
        actions: &[1, 0],
        old_log_probs: &[lp[1], lp[0]],
        advantages: &[1.0, -1.0],
        returns: &[0.0, 0.0],
    };
    let g = bias_grad(&bandit, targets, &device);
    assert!(
        g[1] < 0.0 && g[0] > 0.0,
        "descent must raise arm 1, lower arm 0: {g:?}"
    );
    // At ratio 1 (the policy that acted) A2C's gradient is PPO's.
    let a2c = bias_grad_of(&bandit, targets, &a2c_config(), &device);
    for (p, a) in g.iter().zip(&a2c) {
        assert!((p - a).abs() < 1e-6, "PPO {g:?} vs A2C {a2c:?}");
    }
    // The policy already made arm 1 e^0.5 ≈ 1.65 times likelier than when it was pulled
    // (ratio > 1 + ε with positive advantage): the clipped objective gives no gradient.
    let targets = PpoTargets {
        actions: &[1],
        old_log_probs: &[lp[1] - 0.5],
        advantages: &[1.0],
        returns: &[0.0],
    };
    assert_eq!(
        bias_grad(&bandit, targets, &device),
        vec![0.0, 0.0],
        "clipped"
    );
    // A2C has no clip: it still raises arm 1.
    let g = bias_grad_of(&bandit, targets, &a2c_config(), &device);
    assert!(g[1] < 0.0, "A2C still raises arm 1: {g:?}");
    // The same ratio with a negative advantage is not clipped (pessimistic bound).
    let targets = PpoTargets {
        advantages: &[-1.0],
        ..targets
    };
    let g = bias_grad(&bandit, targets, &device);
    assert!(g[1] > 0.0, "a negative advantage still lowers arm 1: {g:?}");
}

/// Arm 1 pays 1, arm 0 pays 0: 40 PPO updates of 64 pulls each make arm 1 the choice; so do
/// 40 A2C updates.
#[test]
fn a_few_updates_solve_a_two_armed_bandit() {
    for algorithm in [Algorithm::Ppo, Algorithm::A2c] {
        solve_bandit(algorithm);
    }
}

fn solve_bandit(algorithm: Algorithm) {
    let device = mnemo_backend::test_device();
    let mut bandit = Bandit::new(&device);
    let mut optimizer = OptimConfig::new(0.05).init();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let config = PpoConfig {
        value_coef: 0.5,
        entropy_coef: 0.01,
        normalize_advantages: true,
        algorithm,
        ..config()
    };
    let m = 64;
    let start = log_probs(&bandit, &device)[1].exp();
    for _ in 0..40 {
        let (logits, values) = bandit.forward(m, &device);
        let probs = to_vec(softmax(logits.clone().detach(), 1));
        let v = to_vec(values.clone().detach());
        let actions: Vec<usize> = (0..m)
            .map(|i| usize::from(rng.random::<f32>() < probs[2 * i + 1]))
            .collect();
        let old: Vec<f32> = actions
            .iter()
            .enumerate()
            .map(|(i, &a)| probs[2 * i + a].ln())
            .collect();
        let rewards: Vec<f32> = actions.iter().map(|&a| a as f32).collect();
        let advantages: Vec<f32> = rewards.iter().zip(&v).map(|(r, v)| r - v).collect();
        let targets = PpoTargets {
            actions: &actions,
            old_log_probs: &old,
            advantages: &advantages,
            returns: &rewards,
        };
        let (loss, stats) = ppo_loss(logits, values, targets, &config);
        assert!(stats.loss.is_finite());
        let grads = GradientsParams::from_grads(loss.backward(), &bandit);
        bandit = apply_update(&mut optimizer, bandit, grads, 0.05, 1.0).0;
    }
    let end = log_probs(&bandit, &device)[1].exp();
    assert!(
        end > 0.9,
        "{algorithm:?}: P(arm 1) went from {start} to {end}"
    );
}
