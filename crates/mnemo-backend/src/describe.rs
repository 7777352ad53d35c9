//! One line saying what a backend runs on, for tables and logs.
use crate::{BackendError, device, resolve};

/// What the backend `name` runs on, e.g. `flex (pure Rust, CPU)` or, for wgpu, the adapter's
/// own name (`llvmpipe (LLVM 15.0.6, 256 bits)` on Mesa's software Vulkan driver).
///
/// For the GPU backends (wgpu, cuda) this opens the device, so it panics where
/// [`device`](crate::device)'s first operation would (no adapter, no driver).
pub fn describe(name: &str) -> Result<String, BackendError> {
    let device = device(name)?;
    let text = match resolve(name) {
        "flex" => "flex (pure Rust, CPU)".to_string(),
        "ndarray" => "ndarray (pure Rust, CPU)".to_string(),
        "tch" => "libtorch (CPU)".to_string(),
        backend => adapter_name(&device).unwrap_or_else(|| backend.to_string()),
    };
    Ok(text)
}

/// The adapter's name as the GPU runtime reports it.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn adapter_name(device: &burn::tensor::Device) -> Option<String> {
    device.identity().map(|id| id.name)
}

/// No GPU runtime is compiled in, so no adapter has a name.
#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn adapter_name(_device: &burn::tensor::Device) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_backends_describe_themselves_without_a_device() {
        assert_eq!(
            describe("cpu").unwrap(),
            describe(crate::CPU_BACKEND).unwrap()
        );
        assert!(describe("flex").unwrap().contains("CPU"));
        assert!(matches!(describe("tpu"), Err(BackendError::Unknown { .. })));
    }
}
