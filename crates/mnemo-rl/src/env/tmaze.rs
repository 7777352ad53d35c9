//! The T-maze (Bakker, "Reinforcement Learning with Long Short-Term Memory", NeurIPS 2001; the
//! POPGym "RepeatPrevious"/T-maze family): a cue shown only at the first step, a corridor of
//! `length` cells, and a junction where the agent must turn towards the cue's side.
//!
//! ```text
//!      ###
//! ######G#      length 5, cue up: the north arm holds the goal
//! U@.....#      the cue (U/D, left of the start) is visible at step 0 only
//! ######.#
//!      ###
//! ```
//!
//! - Positions `0..=length` along the corridor: the agent starts at 0, the junction is at
//!   `length`. Optimal episodes take `length + 1` steps.
//! - Actions (4): the [`Heading`] indices north, east, south, west. East/west move along the
//!   corridor (walls stop them); north/south do nothing in the corridor. At the junction, north
//!   or south ends the episode: reward +1 and success if it matches the cue, reward −1 otherwise.
//! - Time limit `max_steps` (default `2 · (length + 1)`): the episode is cut with reward −1 and
//!   no success, so stalling is never better than guessing (whose expected reward is 0).
//! - Observation (4 floats, one-hot): `[cue up, cue down, corridor, junction]`; at step 0 the
//!   cue, afterwards where the agent stands (the start looks like corridor). As in Bakker's
//!   version, the only way to turn correctly more than half the time is to remember step 0.
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Env, Step};
use crate::env::Heading;
use crate::render::{Frame, Tile};

/// `kind = "tmaze"`: the T-maze's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TMazeConfig {
    /// Corridor length L (>= 1): steps from the start to the junction; the memory horizon.
    #[serde(default = "default_length")]
    pub length: usize,
    /// Time limit in steps (>= length + 1); `None` = `2 · (length + 1)`.
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Reward −`step_penalty` for every corridor step that does not move towards the junction
    /// (the "passive T-maze" of Ni et al., 2023, "When Do Transformers Shine in RL?"): a dense
    /// signal to walk on, so that exploration does not decide which policy learns; the memory
    /// task at the junction is unchanged. 0 (default) = Bakker's sparse rewards.
    #[serde(default)]
    pub step_penalty: f32,
}

fn default_length() -> usize {
    10
}

impl Default for TMazeConfig {
    fn default() -> Self {
        Self {
            length: default_length(),
            max_steps: None,
            step_penalty: 0.0,
        }
    }
}

impl TMazeConfig {
    /// Bakker's T-maze with corridor length `length`: the default time limit, no step penalty.
    pub fn new(length: usize) -> Self {
        Self {
            length,
            ..Self::default()
        }
    }

    /// The time limit in force.
    pub fn time_limit(&self) -> usize {
        self.max_steps.unwrap_or(2 * (self.length + 1))
    }
}

/// The T-maze's observation categories; the discriminant is the one-hot index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TMazeObs {
    /// Step 0, the goal is in the north arm.
    CueUp = 0,
    /// Step 0, the goal is in the south arm.
    CueDown = 1,
    /// In the corridor (including the start after step 0).
    Corridor = 2,
    /// At the junction.
    Junction = 3,
}

const ACTION_NAMES: [&str; 4] = ["north", "east", "south", "west"];
const OBS_DIM: usize = 4;

/// One T-maze episode in progress, with its own RNG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TMaze {
    length: usize,
    max_steps: usize,
    /// Reward lost per corridor step that does not move towards the junction.
    step_penalty: f32,
    /// North or South: the arm that holds the goal.
    cue: Heading,
    /// Position along the corridor, `0..=length`.
    x: usize,
    elapsed: usize,
    /// The arm the agent turned into, once it has.
    turned: Option<Heading>,
    done: bool,
    #[serde(with = "super::rng_serde")]
    rng: ChaCha8Rng,
}

impl TMaze {
    /// A T-maze drawing its cues from `rng`, already reset.
    ///
    /// # Panics
    /// If `config.length` is 0 (see [`crate::env::EnvConfig::validate`]).
    pub fn new(config: &TMazeConfig, rng: ChaCha8Rng) -> Self {
        assert!(config.length >= 1, "tmaze length must be >= 1");
        let mut env = Self {
            length: config.length,
            max_steps: config.time_limit(),
            step_penalty: config.step_penalty,
            cue: Heading::North,
            x: 0,
            elapsed: 0,
            turned: None,
            done: false,
            rng,
        };
        env.reset();
        env
    }

    /// The arm holding the goal this episode (North or South).
    pub fn cue(&self) -> Heading {
        self.cue
    }

    /// Position along the corridor (0 = start, `length` = junction).
    pub fn position(&self) -> usize {
        self.x
    }

    /// The corridor length.
    pub fn length(&self) -> usize {
        self.length
    }

    /// What the agent sees now.
    pub fn observation(&self) -> TMazeObs {
        match (self.elapsed, self.cue) {
            (0, Heading::North) => TMazeObs::CueUp,
            (0, _) => TMazeObs::CueDown,
            _ if self.x == self.length => TMazeObs::Junction,
            _ => TMazeObs::Corridor,
        }
    }
}

impl Env for TMaze {
    fn obs_dim(&self) -> usize {
        OBS_DIM
    }

    fn action_names(&self) -> &'static [&'static str] {
        &ACTION_NAMES
    }

    fn reset(&mut self) {
        self.cue = if self.rng.random::<bool>() {
            Heading::North
        } else {
            Heading::South
        };
        self.x = 0;
        self.elapsed = 0;
        self.turned = None;
        self.done = false;
    }

    fn step(&mut self, action: usize) -> Step {
        assert!(
            action < ACTION_NAMES.len(),
            "tmaze action {action} out of range 0..4"
        );
        debug_assert!(!self.done, "tmaze stepped after the episode ended");
        self.elapsed += 1;
        let at_junction = self.x == self.length;
        let heading = Heading::from_index(action);
        let turn = match heading {
            Heading::North | Heading::South => Some(heading),
            Heading::East | Heading::West => None,
        };
        if let (true, Some(arm)) = (at_junction, turn) {
            let success = arm == self.cue;
            self.turned = Some(arm);
            self.done = true;
            return Step {
                reward: if success { 1.0 } else { -1.0 },
                done: true,
                truncated: false,
                success: Some(success),
                goal: success,
            };
        }
        let before = self.x;
        match heading {
            Heading::East => self.x = (self.x + 1).min(self.length),
            Heading::West => self.x = self.x.saturating_sub(1),
            Heading::North | Heading::South => {}
        }
        let penalty = if self.x > before {
            0.0
        } else {
            self.step_penalty
        };
        if self.elapsed >= self.max_steps {
            self.done = true;
            return Step {
                reward: -1.0 - penalty,
                done: true,
                truncated: true,
                success: Some(false),
                goal: false,
            };
        }
        Step {
            reward: -penalty,
            ..Step::default()
        }
    }

    fn observe(&self, out: &mut [f32]) {
        out[..OBS_DIM].fill(0.0);
        out[self.observation() as usize] = 1.0;
    }

    fn elapsed(&self) -> usize {
        self.elapsed
    }

    fn frame(&self) -> Frame {
        let l = self.length;
        let mut frame = Frame::new(l + 3, 5, Tile::Wall);
        for x in 0..l + 3 {
            if x < l {
                frame.set(x, 0, Tile::Void);
                frame.set(x, 4, Tile::Void);
            }
            if (1..=l + 1).contains(&x) {
                frame.set(x, 2, Tile::Floor);
            }
        }
        let (goal_row, other_row) = if self.cue == Heading::North {
            (1, 3)
        } else {
            (3, 1)
        };
        frame.set(l + 1, goal_row, Tile::Goal);
        frame.set(l + 1, other_row, Tile::Floor);
        if self.elapsed == 0 {
            frame.set(0, 2, Tile::Cue(self.cue));
        }
        let agent = match self.turned {
            Some(Heading::North) => (l + 1, 1),
            Some(_) => (l + 1, 3),
            None => (self.x + 1, 2),
        };
        frame.set(agent.0, agent.1, Tile::Agent(None));
        frame.lit.fill(false);
        frame.lit[agent.1 * frame.width + agent.0] = true;
        if self.elapsed == 0 {
            frame.lit[2 * frame.width] = true;
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::env_rng;

    #[test]
    fn frame_matches_the_picture() {
        let mut env = TMaze::new(&TMazeConfig::new(3), env_rng(0, 0));
        while env.cue() != Heading::North {
            env.reset();
        }
        assert_eq!(
            env.frame().ascii(),
            "   ###\n####G#\nU@...#\n####.#\n   ###\n"
        );
        for _ in 0..3 {
            env.step(Heading::East.index());
        }
        assert_eq!(
            env.frame().ascii(),
            "   ###\n####G#\n#...@#\n####.#\n   ###\n"
        );
        let step = env.step(Heading::North.index());
        assert_eq!(step.reward, 1.0);
        assert_eq!(
            env.frame().ascii(),
            "   ###\n####@#\n#....#\n####.#\n   ###\n"
        );
    }

    /// With a step penalty, only corridor steps towards the junction are free; the junction's
    /// ±1 and the time limit's −1 are as without it.
    #[test]
    fn step_penalty_charges_steps_that_do_not_advance() {
        let config = TMazeConfig {
            length: 2,
            max_steps: Some(5),
            step_penalty: 0.25,
        };
        let mut env = TMaze::new(&config, env_rng(0, 0));
        let rewards: Vec<f32> = [Heading::West, Heading::East, Heading::North]
            .iter()
            .map(|&a| env.step(a.index()).reward)
            .collect();
        assert_eq!(
            rewards,
            [-0.25, 0.0, -0.25],
            "back (at the start), forward, north in the corridor"
        );
        assert_eq!(env.step(Heading::East.index()).reward, 0.0);
        assert_eq!(
            env.step(env.cue().index()).reward,
            1.0,
            "the junction's reward is unchanged"
        );
        let mut env = TMaze::new(&config, env_rng(0, 1));
        let last: Vec<f32> = (0..5)
            .map(|_| env.step(Heading::West.index()).reward)
            .collect();
        assert_eq!(last, [-0.25, -0.25, -0.25, -0.25, -1.25], "time limit");
    }
}
