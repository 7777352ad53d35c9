//! With the `tch` feature, check that libtorch can be found before torch-sys tries (and fails
//! with a download error or a wall of linker errors): the build stops with one message saying
//! to run `scripts/setup-tch.sh`. Without the feature this does nothing.
use std::env;
use std::path::Path;
use std::process::{Command, exit};

/// The PyTorch version burn-tch 0.22.1's torch-sys 0.22.0 is written against.
const TORCH_VERSION: &str = "2.9.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    for var in [
        "LIBTORCH",
        "LIBTORCH_LIB",
        "LIBTORCH_USE_PYTORCH",
        "LIBTORCH_BYPASS_VERSION_CHECK",
        "VIRTUAL_ENV",
        "PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if let Err(problem) = check() {
        eprintln!(
            "\nerror: the `tch` backend needs libtorch {TORCH_VERSION} (PyTorch {TORCH_VERSION}) at \
             build time: {problem}.\n\nRun `scripts/setup-tch.sh` (it creates a Python venv with \
             torch=={TORCH_VERSION}), then the `export ...` line it prints, and build again. \
             See docs/backends.md.\n"
        );
        exit(1);
    }
}

/// `Ok` when torch-sys will find a libtorch of the right version.
fn check() -> Result<(), String> {
    if let Some(dir) = env::var_os("LIBTORCH") {
        let lib = env::var_os("LIBTORCH_LIB").unwrap_or_else(|| dir.clone());
        let so = Path::new(&lib).join("lib").join("libtorch_cpu.so");
        return match so.exists() {
            true => Ok(()),
            false => Err(format!(
                "LIBTORCH={} holds no lib/libtorch_cpu.so",
                Path::new(&dir).display()
            )),
        };
    }
    if env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        return check_python();
    }
    if Path::new("/usr/lib/libtorch.so").exists() {
        return Ok(());
    }
    Err(
        "neither LIBTORCH nor LIBTORCH_USE_PYTORCH is set (and burn-tch would try to download \
         libtorch)"
            .to_string(),
    )
}

/// With `LIBTORCH_USE_PYTORCH`, torch-sys asks the Python on PATH (`python` in a venv, else
/// `python3`) where torch lives: check that it has torch, of the expected version.
fn check_python() -> Result<(), String> {
    let python = match env::var_os("VIRTUAL_ENV") {
        Some(_) => "python",
        None => "python3",
    };
    let output = Command::new(python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .map_err(|e| format!("LIBTORCH_USE_PYTORCH is set but `{python}` cannot run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "LIBTORCH_USE_PYTORCH is set but `{python}` (first on PATH) cannot import torch"
        ));
    }
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let base = version.split('+').next().unwrap_or_default();
    if base != TORCH_VERSION && env::var_os("LIBTORCH_BYPASS_VERSION_CHECK").is_none() {
        return Err(format!(
            "`{python}` has torch {version}, not {TORCH_VERSION}"
        ));
    }
    Ok(())
}
