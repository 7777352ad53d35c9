//! Counting the compute kernels a GPU backend launches (its dispatches).
//!
//! On a GPU the number of kernels a step launches matters as much as their arithmetic: each
//! one costs a launch and a round trip through memory. burn's GPU backends (`wgpu`, `cuda`)
//! run on cubecl, whose runtime calls a process-wide observer for every kernel it issues;
//! [`count_launches`] installs one for as long as the returned [`LaunchCount`] lives. A CPU
//! backend launches no kernels, so there is nothing to count there.
//!
//! ```no_run
//! let device = mnemo_backend::device("wgpu").unwrap();
//! if let Some(count) = mnemo_backend::count_launches(&device) {
//!     // ... one training step ...
//!     println!("{} dispatches", count.total());
//! }
//! ```

#[cfg(any(feature = "wgpu", feature = "cuda"))]
use std::collections::BTreeMap;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
use std::sync::{Arc, Mutex};

use burn::tensor::Device;

/// The kernels launched since [`count_launches`] returned it; counting stops when it is
/// dropped. Only one count is active at a time: a new one replaces the previous one's
/// observer until it is dropped.
#[derive(Debug)]
pub struct LaunchCount {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    counts: Arc<Counter>,
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    _watching: burn::cubecl::logging::LaunchObservation,
}

impl LaunchCount {
    /// Kernels launched so far.
    pub fn total(&self) -> usize {
        self.by_kernel().iter().map(|(_, n)| n).sum()
    }

    /// Kernels launched so far per kernel name, most launched first (ties by name).
    pub fn by_kernel(&self) -> Vec<(String, usize)> {
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        {
            let counts = self.counts.0.lock().expect("launch counter poisoned");
            let mut rows: Vec<(String, usize)> =
                counts.iter().map(|(k, n)| (k.to_string(), *n)).collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            rows
        }
        #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
        Vec::new()
    }
}

/// Launches per kernel name, filled by cubecl's runtime on the launching thread.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
#[derive(Debug, Default)]
struct Counter(Mutex<BTreeMap<&'static str, usize>>);

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl burn::cubecl::logging::LaunchObserver for Counter {
    fn launched(&self, kernel: &'static str) {
        *self
            .0
            .lock()
            .expect("launch counter poisoned")
            .entry(kernel)
            .or_default() += 1;
    }
}

/// Start counting the kernels launched on a GPU backend, if `device` is one (`wgpu`, `cuda`);
/// None for a CPU backend, which launches no kernels.
///
/// The count is process-wide: it includes kernels launched by other threads meanwhile. With
/// burn's `fusion` feature, operations are queued and launched (fused) when a result is read,
/// so count over work that ends by reading a result.
pub fn count_launches(device: &Device) -> Option<LaunchCount> {
    if crate::runs_on_host(device) {
        return None;
    }
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    {
        let counts = Arc::new(Counter::default());
        let watching = burn::cubecl::logging::LaunchObservation::new(counts.clone());
        Some(LaunchCount {
            counts,
            _watching: watching,
        })
    }
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_backends_have_nothing_to_count() {
        assert!(count_launches(&crate::device("cpu").unwrap()).is_none());
        assert!(count_launches(&crate::test_device()).is_none());
    }

    /// An element-wise addition on wgpu launches at least one kernel while counted, and none
    /// is counted after the count is dropped.
    #[cfg(feature = "wgpu")]
    #[test]
    fn wgpu_additions_are_counted() {
        use burn::tensor::Tensor;
        let device = crate::device("wgpu").unwrap();
        let a = Tensor::<1>::ones([64], &device);
        let _ = a.clone().into_data();
        let count = count_launches(&device).expect("wgpu launches kernels");
        let b = a.clone() + a.clone();
        let _ = b.into_data();
        let first = count.total();
        assert!(first >= 1, "{:?}", count.by_kernel());
        let c = a.clone() * 3.0 + 1.0;
        let _ = c.into_data();
        assert!(count.total() > first, "{:?}", count.by_kernel());
        drop(count);
    }
}
