//! The only mnemo crate that knows backends.
//!
//! Model code in mnemo is written once against burn's backend-free `Tensor` API; the backend is
//! a runtime [`Device`]. This crate maps a backend *name* (as given to `mnemo --backend NAME`) to
//! a `Device`, behind Cargo features, so that a binary built without a backend says which feature
//! would enable it instead of failing obscurely.
//!
//! | name      | feature   | device                         |
//! |-----------|-----------|--------------------------------|
//! | `cpu`     | `flex`    | the default pure-Rust CPU      |
//! | `flex`    | `flex`    | `Device::flex()`               |
//! | `ndarray` | `ndarray` | `Device::ndarray()` (older)    |
#![warn(missing_docs)]

pub use burn::tensor::Device;

/// Every backend name mnemo knows, compiled in or not.
pub const BACKEND_NAMES: &[&str] = &["cpu", "flex", "ndarray"];

/// The backend used when none is named.
pub const DEFAULT_BACKEND: &str = "cpu";

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
         (e.g. `cargo run --release --features {feature} -- ...`)"
    )]
    NotCompiled {
        /// The name that was asked for.
        name: String,
        /// The Cargo feature that enables it.
        feature: &'static str,
    },
}

/// The Cargo feature that enables the backend `name`, if mnemo knows it.
pub fn feature_for(name: &str) -> Option<&'static str> {
    match name {
        "cpu" | "flex" => Some("flex"),
        "ndarray" => Some("ndarray"),
        _ => None,
    }
}

/// Names of the backends compiled into this binary.
pub fn compiled_backends() -> Vec<&'static str> {
    BACKEND_NAMES
        .iter()
        .copied()
        .filter(|n| device(n).is_ok())
        .collect()
}

/// The plain (inference) device for a backend name.
///
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
    match name {
        #[cfg(feature = "flex")]
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        _ => Err(not_compiled()),
    }
}

/// The device for a backend name with gradients switched on (for training and gradient checks).
pub fn autodiff_device(name: &str) -> Result<Device, BackendError> {
    device(name).map(Device::autodiff)
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
    fn unknown_backend_names_the_known_ones() {
        let err = device("tpu").unwrap_err();
        assert!(err.to_string().contains("cpu, flex, ndarray"), "{err}");
    }

    #[test]
    fn missing_backend_names_its_feature() {
        if cfg!(feature = "ndarray") {
            return;
        }
        let err = device("ndarray").unwrap_err();
        assert_eq!(
            err,
            BackendError::NotCompiled { name: "ndarray".into(), feature: "ndarray" }
        );
        assert!(err.to_string().contains("--features ndarray"));
    }

    #[test]
    fn default_backend_is_compiled() {
        assert!(compiled_backends().contains(&DEFAULT_BACKEND));
        assert!(test_device().is_autodiff());
    }
}
