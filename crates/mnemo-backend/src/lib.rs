//! The only mnemo crate that knows backends.
//!
//! Model code in mnemo is written once against burn's backend-free `Tensor` API; the backend is
//! a runtime [`Device`]. This crate maps a backend *name* (as given to `mnemo --backend NAME`) to
//! a `Device`, behind Cargo features, so that a binary built without a backend says which feature
//! would enable it instead of failing obscurely.
//!
//! | name      | feature   | device                                                          |
//! |-----------|-----------|-----------------------------------------------------------------|
//! | `cpu`     | `flex`    | the default CPU backend: [`CPU_BACKEND`] (the faster one here)  |
//! | `flex`    | `flex`    | `Device::flex()`, burn's pure-Rust CPU backend                  |
//! | `ndarray` | `ndarray` | `Device::ndarray()`, burn's older pure-Rust CPU backend         |
//! | `wgpu`    | `wgpu`    | `Device::wgpu(DefaultDevice)`: Vulkan/Metal/DX12 via cubecl     |
//! | `vulkan`  | `vulkan`  | `Device::vulkan(DefaultDevice)`: wgpu pinned to Vulkan, SPIR-V  |
//! | `tch`     | `tch`     | `Device::libtorch()`: LibTorch (PyTorch 2.9.0) on the CPU       |
//! | `cuda`    | `cuda`    | `Device::cuda(0)`: the first NVIDIA GPU via cubecl              |
//!
//! Setting a backend up (drivers, libtorch) is described in `docs/backends.md`.
#![warn(missing_docs)]

mod describe;
mod host_view;
mod launches;

pub use burn::tensor::Device;
pub use describe::describe;
pub use host_view::{HostView, with_host_view, with_slice};
pub use launches::{LaunchCount, count_launches};

/// Every backend name mnemo knows, compiled in or not.
pub const BACKEND_NAMES: &[&str] = &["cpu", "flex", "ndarray", "wgpu", "vulkan", "tch", "cuda"];

/// The backend used when none is named.
pub const DEFAULT_BACKEND: &str = "cpu";

/// The backend that `cpu` stands for: burn-flex, measured faster than burn-ndarray for a
/// training step of the quickstart models on a 2-core x86 machine (see `docs/backends.md`).
pub const CPU_BACKEND: &str = "flex";

/// Why a backend name could not be turned into a device.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackendError {
    /// The name is not one mnemo knows.
    #[error("unknown backend `{name}`; known backends: {known}")]
    Unknown {
        /// The name that was asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
    /// The backend exists but this binary was built without it.
    #[error(
        "backend `{name}` is not compiled into this binary; rebuild with `--features {feature}` \
         (e.g. `cargo run --release --features {feature} -- ...`){}",
        setup_hint(feature)
    )]
    NotCompiled {
        /// The name that was asked for.
        name: String,
        /// The Cargo feature that enables it.
        feature: &'static str,
    },
}

/// What to run before building with `feature`, if anything.
fn setup_hint(feature: &str) -> &'static str {
    match feature {
        "wgpu" | "vulkan" => {
            "; without a GPU, first run scripts/setup-wgpu.sh (see docs/backends.md)"
        }
        "tch" => {
            "; first run scripts/setup-tch.sh and the `export` line it prints (see \
             docs/backends.md)"
        }
        "cuda" => "; it needs an NVIDIA GPU and driver (see docs/backends.md)",
        _ => "",
    }
}

/// What to check when the compiled-in backend `name` fails at run time (its device panics on
/// first use), if there is something to say.
pub fn runtime_hint(name: &str) -> Option<&'static str> {
    match resolve(name) {
        "wgpu" | "vulkan" => {
            Some("is a Vulkan driver installed? check with `scripts/setup-wgpu.sh --check`")
        }
        "tch" => {
            Some("is libtorch 2.9.0 on LD_LIBRARY_PATH? `eval \"$(scripts/setup-tch.sh --env)\"`")
        }
        "cuda" => Some("is there an NVIDIA GPU with its driver? `nvidia-smi`"),
        _ => None,
    }
}

/// The Cargo feature that enables the backend `name`, if mnemo knows it.
pub fn feature_for(name: &str) -> Option<&'static str> {
    match name {
        "cpu" => feature_for(CPU_BACKEND),
        "flex" => Some("flex"),
        "ndarray" => Some("ndarray"),
        "wgpu" => Some("wgpu"),
        "vulkan" => Some("vulkan"),
        "tch" => Some("tch"),
        "cuda" => Some("cuda"),
        _ => None,
    }
}

/// The backend a name stands for: `cpu` is [`CPU_BACKEND`], every other name itself.
pub fn resolve(name: &str) -> &str {
    match name {
        "cpu" => CPU_BACKEND,
        other => other,
    }
}

/// Names of the backends compiled into this binary (`cpu` included, as an alias).
pub fn compiled_backends() -> Vec<&'static str> {
    BACKEND_NAMES
        .iter()
        .copied()
        .filter(|n| is_compiled(n))
        .collect()
}

/// Whether the backend `name` is compiled into this binary (without opening its device).
pub fn is_compiled(name: &str) -> bool {
    match resolve(name) {
        "flex" => cfg!(feature = "flex"),
        "ndarray" => cfg!(feature = "ndarray"),
        "wgpu" => cfg!(feature = "wgpu"),
        "vulkan" => cfg!(feature = "vulkan"),
        "tch" => cfg!(feature = "tch"),
        "cuda" => cfg!(feature = "cuda"),
        _ => false,
    }
}

/// The plain (inference) device for a backend name.
///
/// The device is lazy: a GPU backend opens its adapter at the first tensor operation, and
/// panics there if the machine has none (see `docs/backends.md`).
/// Use [`autodiff_device`] for training.
pub fn device(name: &str) -> Result<Device, BackendError> {
    let feature = feature_for(name).ok_or_else(|| BackendError::Unknown {
        name: name.to_string(),
        known: BACKEND_NAMES.join(", "),
    })?;
    let not_compiled = || BackendError::NotCompiled {
        name: name.to_string(),
        feature,
    };
    match resolve(name) {
        #[cfg(feature = "flex")]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "vulkan")]
        "vulkan" => Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch" => Ok(Device::libtorch()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        _ => Err(not_compiled()),
    }
}

/// The device for a backend name with gradients switched on (for training and gradient checks).
pub fn autodiff_device(name: &str) -> Result<Device, BackendError> {
    device(name).map(Device::autodiff)
}

/// Whether `device` (with or without autodiff) keeps its tensors in host memory, so that host
/// kernels (`mnemo_kernels`, `StepProducts::Host` of the Feedback model's manual backward) can
/// read and write them without a device transfer: true for `flex`, `ndarray` and `tch` (the
/// libtorch CPU device).
pub fn runs_on_host(device: &Device) -> bool {
    let inner = device.clone().inner();
    #[cfg(feature = "flex")]
    if inner == Device::flex() {
        return true;
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    if inner == Device::ndarray() {
        return true;
    }
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    if inner == Device::libtorch() {
        return true;
    }
    let _ = inner;
    false
}

/// The default CPU device with autodiff, for tests and examples.
///
/// # Panics
/// If the default backend feature (`flex`) was disabled at build time.
pub fn test_device() -> Device {
    autodiff_device(DEFAULT_BACKEND).expect("the default backend `flex` must be compiled in")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_devices_run_on_host() {
        assert!(runs_on_host(&device("cpu").unwrap()));
        assert!(
            runs_on_host(&test_device()),
            "the autodiff wrapper is looked through"
        );
        #[cfg(feature = "wgpu")]
        assert!(!runs_on_host(&device("wgpu").unwrap()));
    }

    #[test]
    fn unknown_backend_names_the_known_ones() {
        let err = device("tpu").unwrap_err();
        assert!(
            err.to_string()
                .contains("cpu, flex, ndarray, wgpu, vulkan, tch, cuda"),
            "{err}"
        );
    }

    #[test]
    fn missing_backend_names_its_feature() {
        for (name, hint) in [
            ("ndarray", None),
            ("wgpu", Some("scripts/setup-wgpu.sh")),
            ("vulkan", Some("scripts/setup-wgpu.sh")),
            ("tch", Some("scripts/setup-tch.sh")),
            ("cuda", Some("NVIDIA")),
        ] {
            if is_compiled(name) {
                continue;
            }
            let err = device(name).unwrap_err();
            assert_eq!(
                err,
                BackendError::NotCompiled {
                    name: name.into(),
                    feature: feature_for(name).unwrap()
                }
            );
            let text = err.to_string();
            assert!(text.contains(&format!("--features {name}")), "{text}");
            if let Some(hint) = hint {
                assert!(text.contains(hint), "{text}");
            }
        }
    }

    #[test]
    fn compiled_list_agrees_with_device() {
        for name in BACKEND_NAMES {
            assert_eq!(
                compiled_backends().contains(name),
                device(name).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn gpu_and_libtorch_backends_have_a_runtime_hint() {
        assert!(
            runtime_hint("wgpu")
                .unwrap()
                .contains("setup-wgpu.sh --check")
        );
        assert!(runtime_hint("tch").unwrap().contains("LD_LIBRARY_PATH"));
        assert!(runtime_hint("cuda").is_some());
        assert_eq!(runtime_hint("cpu"), None);
    }

    #[test]
    fn cpu_is_an_alias_of_a_cpu_backend() {
        assert_eq!(resolve("cpu"), CPU_BACKEND);
        assert_eq!(resolve("wgpu"), "wgpu");
        assert_eq!(feature_for("cpu"), feature_for(CPU_BACKEND));
        assert_eq!(device("cpu").unwrap(), device(CPU_BACKEND).unwrap());
    }

    #[test]
    fn default_backend_is_compiled() {
        assert!(compiled_backends().contains(&DEFAULT_BACKEND));
        assert!(test_device().is_autodiff());
    }
}
