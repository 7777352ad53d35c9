//! Maze rules against independent checkers: walls block, the goal is reached exactly when the
//! agent steps onto it (then it respawns elsewhere), the egocentric window equals a crop of the
//! whole maze rotated to the agent's heading, and every generated maze is connected.
use std::collections::VecDeque;

use mnemo_rl::env::{CELL_CHANNELS, Env, Grid, Maze, MazeConfig, Pos, env_rng};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The checker's compass: N, E, S, W as (dx, dy), y down; left = index + 3, right = index + 1.
const DIRS: [(i32, i32); 4] = [(0, -1), (1, 0), (0, 1), (-1, 0)];

const WALL: u8 = 0;
const FLOOR: u8 = 1;
const GOAL: u8 = 2;
const OUTSIDE: u8 = 3;

#[test]
fn random_walk_obeys_walls_goal_and_time_limit() {
    let mut policy = ChaCha8Rng::seed_from_u64(7);
    let mut goals_seen = 0;
    for (seed, size) in [(0, 5), (1, 9), (2, 15)] {
        let config = MazeConfig {
            size,
            view: 3,
            max_steps: 400,
        };
        let mut env = Maze::new(&config, env_rng(seed, 0));
        for _episode in 0..5 {
            let goal = env.goal();
            assert!(!env.grid().is_wall(goal));
            let (mut pos, heading) = env.agent();
            let mut h = heading.index();
            for t in 1..=config.max_steps {
                assert!(!env.grid().is_wall(pos), "the agent stands on floor");
                assert_ne!(pos, goal, "the agent never rests on the goal");
                let action = policy.random_range(0..3);
                let step = env.step(action);
                let mut reached = false;
                match action {
                    0 => h = (h + 3) % 4,
                    1 => h = (h + 1) % 4,
                    _ => {
                        let next = Pos::new(pos.x + DIRS[h].0, pos.y + DIRS[h].1);
                        let blocked = next.x < 0
                            || next.y < 0
                            || next.x >= size as i32
                            || next.y >= size as i32
                            || env.grid().is_wall(next);
                        if !blocked {
                            pos = next;
                        }
                        reached = pos == goal;
                    }
                }
                assert_eq!(env.goal(), goal, "the goal stays put");
                assert_eq!(step.goal, reached);
                assert_eq!(step.reward, if reached { 1.0 } else { 0.0 });
                if reached {
                    goals_seen += 1;
                    // Respawned: somewhere else, on floor (checked at the loop's top).
                    let (p, hd) = env.agent();
                    pos = p;
                    h = hd.index();
                } else {
                    assert_eq!(env.agent(), (pos, mnemo_rl::env::Heading::from_index(h)));
                }
                assert_eq!(step.done, t == config.max_steps);
                assert_eq!(step.truncated, step.done);
                assert_eq!(step.success, None);
            }
            env.reset();
        }
    }
    assert!(
        goals_seen > 0,
        "the walk never reached a goal: the test checked nothing"
    );
}

/// The whole maze as channel codes, padded with `pad` outside cells on every side.
fn padded_world(env: &Maze, pad: usize) -> Vec<Vec<u8>> {
    let n = env.grid().size();
    let mut world = vec![vec![OUTSIDE; n + 2 * pad]; n + 2 * pad];
    for y in 0..n {
        for x in 0..n {
            let pos = Pos::new(x as i32, y as i32);
            world[y + pad][x + pad] = if env.grid().is_wall(pos) {
                WALL
            } else if pos == env.goal() {
                GOAL
            } else {
                FLOOR
            };
        }
    }
    world
}

/// Rotate a matrix a quarter turn anticlockwise: the top-right corner becomes the top-left.
fn rotate_ccw<T: Copy>(m: &[Vec<T>]) -> Vec<Vec<T>> {
    let (h, w) = (m.len(), m[0].len());
    (0..w)
        .map(|r| (0..h).map(|c| m[c][w - 1 - r]).collect())
        .collect()
}

/// The window computed the other way: rotate the padded world (and a marker of the agent) so
/// the agent's heading points up, then crop `view × view` around the marker.
fn window_by_rotation(env: &Maze) -> Vec<u8> {
    let view = env.view();
    let half = view / 2;
    let mut world = padded_world(env, half);
    let (pos, heading) = env.agent();
    let mut marker = vec![vec![false; world.len()]; world.len()];
    marker[pos.y as usize + half][pos.x as usize + half] = true;
    // Facing east, one anticlockwise turn brings east to the top; south two, west three.
    for _ in 0..heading.index() {
        world = rotate_ccw(&world);
        marker = rotate_ccw(&marker);
    }
    let (ay, ax) = (0..marker.len())
        .flat_map(|y| (0..marker.len()).map(move |x| (y, x)))
        .find(|&(y, x)| marker[y][x])
        .unwrap();
    let mut crop = Vec::with_capacity(view * view);
    for r in 0..view {
        for c in 0..view {
            crop.push(world[ay + r - half][ax + c - half]);
        }
    }
    crop
}

#[test]
fn egocentric_window_equals_a_crop_of_the_rotated_maze() {
    let mut policy = ChaCha8Rng::seed_from_u64(3);
    let mut goal_in_view = 0;
    for (size, view) in [(5, 1), (5, 7), (9, 3), (9, 5), (15, 5), (15, 7)] {
        let config = MazeConfig {
            size,
            view,
            max_steps: 300,
        };
        let mut env = Maze::new(&config, env_rng(size as u64, view as u64));
        let cells = view * view;
        assert_eq!(env.obs_dim(), (cells + 1) * CELL_CHANNELS);
        let mut obs = vec![f32::NAN; env.obs_dim()];
        for _ in 0..config.max_steps {
            env.observe(&mut obs);
            let expected = window_by_rotation(&env);
            for (cell, want) in expected.iter().enumerate() {
                let code = &obs[cell * CELL_CHANNELS..(cell + 1) * CELL_CHANNELS];
                let mut one_hot = [0.0; CELL_CHANNELS];
                one_hot[*want as usize] = 1.0;
                assert_eq!(code, one_hot, "size {size} view {view} cell {cell}");
            }
            goal_in_view += usize::from(expected.contains(&GOAL));
            let mut heading = [0.0; 4];
            heading[env.agent().1.index()] = 1.0;
            assert_eq!(&obs[cells * CELL_CHANNELS..], heading);
            assert_eq!(
                expected[cells / 2],
                FLOOR,
                "the agent's own cell reads floor"
            );
            env.step(policy.random_range(0..3));
        }
    }
    assert!(
        goal_in_view > 0,
        "the goal was never in view: the goal channel went untested"
    );
}

/// Floor cells reachable from the first floor cell, by breadth-first search.
fn reachable(grid: &Grid) -> usize {
    let n = grid.size() as i32;
    let floor = |x: i32, y: i32| {
        (0..n).contains(&x) && (0..n).contains(&y) && !grid.is_wall(Pos::new(x, y))
    };
    let start = (0..n)
        .flat_map(|y| (0..n).map(move |x| (x, y)))
        .find(|&(x, y)| floor(x, y))
        .unwrap();
    let mut seen = vec![false; (n * n) as usize];
    seen[(start.1 * n + start.0) as usize] = true;
    let mut queue = VecDeque::from([start]);
    let mut count = 0;
    while let Some((x, y)) = queue.pop_front() {
        count += 1;
        for (dx, dy) in DIRS {
            let (nx, ny) = (x + dx, y + dy);
            if floor(nx, ny) && !seen[(ny * n + nx) as usize] {
                seen[(ny * n + nx) as usize] = true;
                queue.push_back((nx, ny));
            }
        }
    }
    count
}

#[test]
fn every_generated_maze_is_connected() {
    for size in (5..=21).step_by(2).chain([31, 63]) {
        let seeds = if size <= 21 { 300 } else { 20 };
        for seed in 0..seeds {
            let grid = Grid::maze(size, &mut ChaCha8Rng::seed_from_u64(seed));
            let floor = grid.floor_cells().len();
            assert_eq!(reachable(&grid), floor, "size {size} seed {seed}");
            // All rooms (odd, odd) are floor.
            for y in (1..size).step_by(2) {
                for x in (1..size).step_by(2) {
                    assert!(!grid.is_wall(Pos::new(x as i32, y as i32)));
                }
            }
        }
    }
    // And the mazes the environment draws on reset.
    let config = MazeConfig {
        size: 11,
        ..MazeConfig::default()
    };
    let mut env = Maze::new(&config, env_rng(9, 0));
    for _ in 0..200 {
        assert_eq!(reachable(env.grid()), env.grid().floor_cells().len());
        env.reset();
    }
}
