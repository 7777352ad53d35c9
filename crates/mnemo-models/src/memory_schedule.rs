//! The per-layer memory schedule of Transformer-XL: how many earlier positions each layer sees.
//!
//! Rae & Razavi, "Do Transformers Need Deep Long-Range Memory?" (2020): long-range memory in k
//! of L layers (at chosen depths), short spans elsewhere. The schedule is given in exactly one of
//! three forms (fields of the `[model]` table):
//!
//! ```toml
//! memory_len = 64                        # every layer sees 64 earlier positions
//! memory_schedule = [64, 64, 64, 512]    # one entry per layer, bottom layer first
//! long_range_layers = [3]                # 0-based layer indices with the long memory,
//! long_memory_len = 512                  # ... their memory,
//! short_memory_len = 64                  # ... and every other layer's
//! ```
use crate::config::ConfigError;

/// The memory schedule fields of a Transformer-XL config (exactly one form must be given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySchedule {
    /// One memory length for every layer.
    pub memory_len: Option<usize>,
    /// One memory length per layer, bottom layer first (length = `n_layers`).
    pub memory_schedule: Option<Vec<usize>>,
    /// 0-based indices of the layers with the long memory (with `long_memory_len` and
    /// `short_memory_len`).
    pub long_range_layers: Option<Vec<usize>>,
    /// Memory length of the `long_range_layers`.
    pub long_memory_len: Option<usize>,
    /// Memory length of every other layer.
    pub short_memory_len: Option<usize>,
}

impl MemorySchedule {
    /// Every layer with memory `len`.
    pub fn uniform(len: usize) -> Self {
        Self {
            memory_len: Some(len),
            ..Self::default()
        }
    }

    /// An explicit per-layer list.
    pub fn per_layer(lens: Vec<usize>) -> Self {
        Self {
            memory_schedule: Some(lens),
            ..Self::default()
        }
    }

    /// Long memory in `layers`, short memory elsewhere.
    pub fn long_range(layers: Vec<usize>, long: usize, short: usize) -> Self {
        Self {
            long_range_layers: Some(layers),
            long_memory_len: Some(long),
            short_memory_len: Some(short),
            ..Self::default()
        }
    }

    /// The memory length of each of `n_layers` layers; the error names the offending field.
    pub fn lengths(&self, n_layers: usize) -> Result<Vec<usize>, ConfigError> {
        let helper = self.long_range_layers.is_some()
            || self.long_memory_len.is_some()
            || self.short_memory_len.is_some();
        let given: Vec<&str> = [
            (self.memory_len.is_some(), "memory_len"),
            (self.memory_schedule.is_some(), "memory_schedule"),
            (helper, "long_range_layers"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        match given.as_slice() {
            [] => {
                return Err(ConfigError::new(
                    "memory_len",
                    "no memory schedule: give memory_len, memory_schedule, or long_range_layers \
                     with long_memory_len and short_memory_len",
                ));
            }
            [_] => {}
            [first, second, ..] => {
                return Err(ConfigError::new(
                    second,
                    format!("give only one memory schedule form; {first} is also set"),
                ));
            }
        }
        if let Some(len) = self.memory_len {
            if len == 0 {
                return Err(ConfigError::new("memory_len", "must be at least 1"));
            }
            return Ok(vec![len; n_layers]);
        }
        if let Some(lens) = &self.memory_schedule {
            if lens.len() != n_layers {
                return Err(ConfigError::new(
                    "memory_schedule",
                    format!("has {} entries but n_layers is {n_layers}", lens.len()),
                ));
            }
            if let Some(l) = lens.iter().position(|&m| m == 0) {
                return Err(ConfigError::new(
                    "memory_schedule",
                    format!("entry {l} is 0; every layer needs at least 1"),
                ));
            }
            return Ok(lens.clone());
        }
        let layers = self.long_range_layers.as_ref().ok_or_else(|| {
            ConfigError::new(
                "long_range_layers",
                "must be set with long_memory_len and short_memory_len",
            )
        })?;
        let long = self.long_memory_len.ok_or_else(|| {
            ConfigError::new("long_memory_len", "must be set with long_range_layers")
        })?;
        let short = self.short_memory_len.ok_or_else(|| {
            ConfigError::new("short_memory_len", "must be set with long_range_layers")
        })?;
        if layers.is_empty() {
            return Err(ConfigError::new(
                "long_range_layers",
                "must name at least one layer",
            ));
        }
        let mut lens = vec![short; n_layers];
        for (i, &l) in layers.iter().enumerate() {
            if l >= n_layers {
                return Err(ConfigError::new(
                    "long_range_layers",
                    format!("layer {l} is out of range (layers are 0..{n_layers})"),
                ));
            }
            if layers[..i].contains(&l) {
                return Err(ConfigError::new(
                    "long_range_layers",
                    format!("layer {l} is listed twice"),
                ));
            }
            lens[l] = long;
        }
        if short == 0 {
            return Err(ConfigError::new("short_memory_len", "must be at least 1"));
        }
        if long == 0 {
            return Err(ConfigError::new("long_memory_len", "must be at least 1"));
        }
        if short > long {
            return Err(ConfigError::new(
                "short_memory_len",
                format!("({short}) exceeds long_memory_len ({long})"),
            ));
        }
        Ok(lens)
    }
}
