//! The `[env]` table of an RL experiment: which environment, its settings, how many copies and
//! the seed.
use serde::{Deserialize, Serialize};

use super::{AnyEnv, Maze, MazeConfig, TMaze, TMazeConfig, VecEnv, env_rng};

/// An environment configuration problem, naming the field (relative to the `[env]` table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("env.{field}: {message}")]
pub struct EnvConfigError {
    /// The offending field, e.g. `view`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl EnvConfigError {
    /// A new error for `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// `[env]`: the environment, its number of parallel copies and its seed.
///
/// ```toml
/// [env]
/// kind = "maze"      # or "tmaze" (with `length`, `max_steps`)
/// size = 9
/// view = 5
/// max_steps = 256
/// n_envs = 16
/// seed = 0
/// ```
///
/// Unknown fields are rejected (by the variant's table, which sees every key that is not
/// `n_envs` or `seed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvConfig {
    /// Number of parallel copies (>= 1); the batch size of a rollout.
    #[serde(default = "default_n_envs")]
    pub n_envs: usize,
    /// Seed of the environments' layouts, cues and spawns (copy `i` uses stream `i`).
    #[serde(default)]
    pub seed: u64,
    /// Which environment, with its settings.
    #[serde(flatten)]
    pub kind: EnvKind,
}

fn default_n_envs() -> usize {
    16
}

/// Which environment (`kind = "tmaze" | "maze"`), with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum EnvKind {
    /// The T-maze.
    #[serde(rename = "tmaze")]
    TMaze(TMazeConfig),
    /// The egocentric maze.
    #[serde(rename = "maze")]
    Maze(MazeConfig),
}

impl EnvKind {
    /// Short name (`tmaze`, `maze`).
    pub fn name(&self) -> &'static str {
        match self {
            EnvKind::TMaze(_) => "tmaze",
            EnvKind::Maze(_) => "maze",
        }
    }

    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), EnvConfigError> {
        match self {
            EnvKind::TMaze(c) => {
                if c.length == 0 {
                    return Err(EnvConfigError::new("length", "must be at least 1"));
                }
                if c.time_limit() < c.length + 1 {
                    return Err(EnvConfigError::new(
                        "max_steps",
                        format!(
                            "{} is too short to reach the junction and turn (needs >= length + 1 = {})",
                            c.time_limit(),
                            c.length + 1
                        ),
                    ));
                }
            }
            EnvKind::Maze(c) => {
                if c.size % 2 == 0 || !(5..=63).contains(&c.size) {
                    return Err(EnvConfigError::new(
                        "size",
                        format!("must be odd and in 5..=63, got {}", c.size),
                    ));
                }
                if c.view % 2 == 0 || !(1..=15).contains(&c.view) {
                    return Err(EnvConfigError::new(
                        "view",
                        format!("must be odd and in 1..=15, got {}", c.view),
                    ));
                }
                if c.max_steps == 0 {
                    return Err(EnvConfigError::new("max_steps", "must be at least 1"));
                }
            }
        }
        Ok(())
    }

    /// Copy `index` of this environment under `seed` (its RNG: [`env_rng`]`(seed, index)`).
    ///
    /// # Panics
    /// If the settings are invalid (call [`EnvKind::validate`] first).
    pub fn build_one(&self, seed: u64, index: usize) -> AnyEnv {
        let rng = env_rng(seed, index as u64);
        match self {
            EnvKind::TMaze(c) => AnyEnv::TMaze(TMaze::new(c, rng)),
            EnvKind::Maze(c) => AnyEnv::Maze(Maze::new(c, rng)),
        }
    }
}

impl EnvConfig {
    /// Check every field; the error names the first bad one (`env.view: ...`).
    pub fn validate(&self) -> Result<(), EnvConfigError> {
        if self.n_envs == 0 {
            return Err(EnvConfigError::new("n_envs", "must be at least 1"));
        }
        self.kind.validate()
    }

    /// `n_envs` reset copies, copy `i` seeded with `(seed, stream i)`.
    pub fn build(&self) -> Result<VecEnv<AnyEnv>, EnvConfigError> {
        self.validate()?;
        Ok(VecEnv::new(
            (0..self.n_envs)
                .map(|i| self.kind.build_one(self.seed, i))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Experiment {
        env: EnvConfig,
    }

    fn parse(text: &str) -> Result<EnvConfig, String> {
        toml::from_str::<Experiment>(text)
            .map(|e| e.env)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn toml_tables_parse_with_defaults() {
        let config = parse("[env]\nkind = \"tmaze\"\nlength = 20\nn_envs = 4\nseed = 3\n").unwrap();
        let expected = EnvConfig {
            n_envs: 4,
            seed: 3,
            kind: EnvKind::TMaze(TMazeConfig {
                length: 20,
                max_steps: None,
                step_penalty: 0.0,
            }),
        };
        assert_eq!(config, expected);
        let config = parse("[env]\nkind = \"maze\"\n").unwrap();
        assert_eq!(config.kind, EnvKind::Maze(MazeConfig::default()));
        assert_eq!((config.n_envs, config.seed), (16, 0));
        let json = serde_json::to_string(&expected).unwrap();
        assert_eq!(serde_json::from_str::<EnvConfig>(&json).unwrap(), expected);
    }

    #[test]
    fn unknown_fields_and_kinds_are_named() {
        let err = parse("[env]\nkind = \"tmaze\"\nlenght = 20\n").unwrap_err();
        assert!(err.contains("lenght"), "{err}");
        let err = parse("[env]\nkind = \"maze\"\nlength = 20\n").unwrap_err();
        assert!(err.contains("length"), "{err}");
        let err = parse("[env]\nkind = \"gridworld\"\n").unwrap_err();
        assert!(err.contains("gridworld"), "{err}");
    }

    #[test]
    fn validate_names_the_field() {
        let bad = |kind: EnvKind, n_envs: usize| {
            EnvConfig {
                n_envs,
                seed: 0,
                kind,
            }
            .validate()
            .unwrap_err()
            .to_string()
        };
        let maze = |size, view, max_steps| {
            EnvKind::Maze(MazeConfig {
                size,
                view,
                max_steps,
            })
        };
        assert!(bad(maze(9, 5, 10), 0).starts_with("env.n_envs:"));
        assert!(bad(maze(10, 5, 10), 1).starts_with("env.size:"));
        assert!(bad(maze(3, 5, 10), 1).starts_with("env.size:"));
        assert!(bad(maze(9, 4, 10), 1).starts_with("env.view:"));
        assert!(bad(maze(9, 5, 0), 1).starts_with("env.max_steps:"));
        let tmaze = |length, max_steps| {
            EnvKind::TMaze(TMazeConfig {
                max_steps,
                ..TMazeConfig::new(length)
            })
        };
        assert!(bad(tmaze(0, None), 1).starts_with("env.length:"));
        assert!(bad(tmaze(10, Some(10)), 1).starts_with("env.max_steps:"));
        assert!(tmaze(10, Some(11)).validate().is_ok());
    }
}
