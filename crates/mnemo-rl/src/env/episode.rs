//! What a finished episode reports, and averages over many.
use serde::{Deserialize, Serialize};

/// A finished episode of one copy of a [`super::VecEnv`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpisodeInfo {
    /// Which copy (row) it ran in.
    pub env: usize,
    /// Undiscounted return.
    pub ret: f32,
    /// Steps taken.
    pub len: usize,
    /// Success, for tasks that define it (T-maze: turned the right way).
    pub success: Option<bool>,
    /// Goals reached (maze: goals per episode; T-maze: 1 on success).
    pub goals: u32,
}

/// Means over finished episodes (what training logs and `mnemo rollout` print).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EpisodeSummary {
    /// Episodes counted.
    pub episodes: usize,
    /// Mean undiscounted return.
    pub mean_return: f64,
    /// Mean length in steps.
    pub mean_length: f64,
    /// Fraction of successes among episodes that report success (`None` if none do).
    pub success_rate: Option<f64>,
    /// Mean goals per episode.
    pub mean_goals: f64,
}

impl EpisodeSummary {
    /// Summarise `episodes` (all zeros and no success rate when empty).
    pub fn of(episodes: &[EpisodeInfo]) -> Self {
        let n = episodes.len();
        if n == 0 {
            return Self::default();
        }
        let mean = |f: &dyn Fn(&EpisodeInfo) -> f64| episodes.iter().map(f).sum::<f64>() / n as f64;
        let judged: Vec<bool> = episodes.iter().filter_map(|e| e.success).collect();
        Self {
            episodes: n,
            mean_return: mean(&|e| e.ret as f64),
            mean_length: mean(&|e| e.len as f64),
            success_rate: (!judged.is_empty())
                .then(|| judged.iter().filter(|&&s| s).count() as f64 / judged.len() as f64),
            mean_goals: mean(&|e| e.goals as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_and_success_rate() {
        let e = |ret, len, success, goals| EpisodeInfo {
            env: 0,
            ret,
            len,
            success,
            goals,
        };
        let s = EpisodeSummary::of(&[e(1.0, 4, Some(true), 1), e(-1.0, 6, Some(false), 0)]);
        assert_eq!(s.episodes, 2);
        assert_eq!(
            (s.mean_return, s.mean_length, s.mean_goals),
            (0.0, 5.0, 0.5)
        );
        assert_eq!(s.success_rate, Some(0.5));
        let s = EpisodeSummary::of(&[e(3.0, 10, None, 3)]);
        assert_eq!(s.success_rate, None);
        assert_eq!(EpisodeSummary::of(&[]).episodes, 0);
    }
}
