//! Egocentric mazes in the spirit of Memory Maze (Pasukonis et al., "Evaluating Long-Term
//! Memory in 3D Mazes", ICLR 2023), on a grid: a random perfect maze per episode, a goal that
//! stays put within the episode, and an agent that only sees a small window around itself.
//!
//! - Layout: [`Grid::maze`] of odd `size` (9×9 to 15×15 typical), new each episode.
//! - The goal is a random floor cell, fixed for the episode. The agent spawns on a random other
//!   floor cell with a random heading; reaching the goal gives reward +1 and respawns the agent
//!   the same way (within the same step). A memory of the layout therefore shows up as more
//!   goals per episode.
//! - Actions (3): turn left, turn right (a quarter turn each, staying in place), forward (one
//!   cell; a wall leaves the agent where it is).
//! - Fixed episode length `max_steps`: every episode ends truncated; no success criterion, the
//!   metric is goals per episode.
//! - Observation: `view × view` cells around the agent (the agent at the centre), rotated so the
//!   agent faces up: window row 0 is farthest ahead, column 0 is leftmost. Each cell is a
//!   one-hot over [`CELL_CHANNELS`] = `[wall, floor, goal, outside the maze]` (the agent's own
//!   cell reads floor). A final token holds the compass heading one-hot `[N, E, S, W]`, so the
//!   vector is `(view² + 1) × 4` floats, readable as `view² + 1` tokens of 4 features.
//!
//! Differences from Memory Maze: a 2D grid instead of 3D rendering, one goal instead of
//! several coloured objects with a changing target, and a perfect maze (no loops or rooms).
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Env, ObsTokens, Step};
use crate::env::{Grid, Heading, Pos};
use crate::render::{Frame, Tile};

/// Channels of one observed cell: `[wall, floor, goal, outside]`.
pub const CELL_CHANNELS: usize = 4;
const WALL: usize = 0;
const FLOOR: usize = 1;
const GOAL: usize = 2;
const OUTSIDE: usize = 3;

/// `kind = "maze"`: the egocentric maze's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MazeConfig {
    /// Side of the maze in cells, odd, 5..=63 (walls included).
    #[serde(default = "default_size")]
    pub size: usize,
    /// Side of the egocentric window, odd, 1..=15.
    #[serde(default = "default_view")]
    pub view: usize,
    /// Episode length in steps (>= 1).
    #[serde(default = "default_max_steps")]
    pub max_steps: usize,
}

fn default_size() -> usize {
    9
}

fn default_view() -> usize {
    5
}

fn default_max_steps() -> usize {
    256
}

impl Default for MazeConfig {
    fn default() -> Self {
        Self {
            size: default_size(),
            view: default_view(),
            max_steps: default_max_steps(),
        }
    }
}

/// The maze's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MazeAction {
    /// Quarter turn anticlockwise.
    Left = 0,
    /// Quarter turn clockwise.
    Right = 1,
    /// One cell ahead unless it is a wall.
    Forward = 2,
}

const ACTION_NAMES: [&str; 3] = ["left", "right", "forward"];

/// One maze episode in progress, with its own RNG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Maze {
    size: usize,
    view: usize,
    max_steps: usize,
    grid: Grid,
    goal: Pos,
    agent: Pos,
    heading: Heading,
    elapsed: usize,
    #[serde(with = "super::rng_serde")]
    rng: ChaCha8Rng,
}

impl Maze {
    /// A maze drawing its layouts and spawns from `rng`, already reset.
    ///
    /// # Panics
    /// If `size` is even or below 5 or `view` is even (see
    /// [`crate::env::EnvConfig::validate`]).
    pub fn new(config: &MazeConfig, rng: ChaCha8Rng) -> Self {
        assert!(
            config.size >= 5 && config.size % 2 == 1,
            "maze size must be odd and >= 5"
        );
        assert!(config.view % 2 == 1, "maze view must be odd");
        let mut env = Self {
            size: config.size,
            view: config.view,
            max_steps: config.max_steps,
            grid: Grid::filled(config.size),
            goal: Pos::new(1, 1),
            agent: Pos::new(1, 1),
            heading: Heading::North,
            elapsed: 0,
            rng,
        };
        env.reset();
        env
    }

    /// The current layout.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The goal cell.
    pub fn goal(&self) -> Pos {
        self.goal
    }

    /// The agent's cell and heading.
    pub fn agent(&self) -> (Pos, Heading) {
        (self.agent, self.heading)
    }

    /// Side of the egocentric window.
    pub fn view(&self) -> usize {
        self.view
    }

    /// The maze cell seen at window row `r`, column `c` (see the module docs).
    pub fn window_cell(&self, r: usize, c: usize) -> Pos {
        let half = (self.view / 2) as i32;
        let ahead = half - r as i32;
        let right = c as i32 - half;
        let (fx, fy) = self.heading.delta();
        let (rx, ry) = self.heading.right().delta();
        Pos::new(
            self.agent.x + ahead * fx + right * rx,
            self.agent.y + ahead * fy + right * ry,
        )
    }

    /// A random floor cell other than the goal, with a random heading.
    fn spawn(&mut self) {
        let n = self.size as i32;
        loop {
            let pos = Pos::new(self.rng.random_range(0..n), self.rng.random_range(0..n));
            if !self.grid.is_wall(pos) && pos != self.goal {
                self.agent = pos;
                break;
            }
        }
        self.heading = Heading::from_index(self.rng.random_range(0..4));
    }

    fn channel(&self, pos: Pos) -> usize {
        if !self.grid.contains(pos) {
            OUTSIDE
        } else if self.grid.is_wall(pos) {
            WALL
        } else if pos == self.goal {
            GOAL
        } else {
            FLOOR
        }
    }
}

impl Env for Maze {
    fn obs_dim(&self) -> usize {
        (self.view * self.view + 1) * CELL_CHANNELS
    }

    fn obs_tokens(&self) -> ObsTokens {
        ObsTokens {
            tokens: self.view * self.view + 1,
            features: CELL_CHANNELS,
        }
    }

    fn action_names(&self) -> &'static [&'static str] {
        &ACTION_NAMES
    }

    fn reset(&mut self) {
        self.grid = Grid::maze(self.size, &mut self.rng);
        let n = self.size as i32;
        loop {
            let pos = Pos::new(self.rng.random_range(0..n), self.rng.random_range(0..n));
            if !self.grid.is_wall(pos) {
                self.goal = pos;
                break;
            }
        }
        self.spawn();
        self.elapsed = 0;
    }

    fn step(&mut self, action: usize) -> Step {
        debug_assert!(
            self.elapsed < self.max_steps,
            "maze stepped after the episode ended"
        );
        self.elapsed += 1;
        let mut step = Step::default();
        match action {
            0 => self.heading = self.heading.left(),
            1 => self.heading = self.heading.right(),
            2 => {
                let next = self.agent.ahead(self.heading);
                if !self.grid.is_wall(next) {
                    self.agent = next;
                }
                if self.agent == self.goal {
                    step.reward = 1.0;
                    step.goal = true;
                    self.spawn();
                }
            }
            _ => panic!("maze action {action} out of range 0..3"),
        }
        if self.elapsed >= self.max_steps {
            step.done = true;
            step.truncated = true;
        }
        step
    }

    fn observe(&self, out: &mut [f32]) {
        let cells = self.view * self.view;
        let out = &mut out[..(cells + 1) * CELL_CHANNELS];
        out.fill(0.0);
        for r in 0..self.view {
            for c in 0..self.view {
                let cell = r * self.view + c;
                out[cell * CELL_CHANNELS + self.channel(self.window_cell(r, c))] = 1.0;
            }
        }
        out[cells * CELL_CHANNELS + self.heading.index()] = 1.0;
    }

    fn elapsed(&self) -> usize {
        self.elapsed
    }

    fn frame(&self) -> Frame {
        let n = self.size;
        let mut frame = Frame::new(n, n, Tile::Wall);
        for y in 0..n {
            for x in 0..n {
                let pos = Pos::new(x as i32, y as i32);
                let tile = match self.channel(pos) {
                    FLOOR => Tile::Floor,
                    GOAL => Tile::Goal,
                    _ => Tile::Wall,
                };
                frame.set(x, y, tile);
            }
        }
        frame.set(
            self.agent.x as usize,
            self.agent.y as usize,
            Tile::Agent(Some(self.heading)),
        );
        frame.lit.fill(false);
        for r in 0..self.view {
            for c in 0..self.view {
                let pos = self.window_cell(r, c);
                if self.grid.contains(pos) {
                    frame.lit[pos.y as usize * n + pos.x as usize] = true;
                }
            }
        }
        frame
    }
}
