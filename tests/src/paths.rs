//! Where the repository, the stack's cache and the runner's state are.

use std::path::PathBuf;

/// The repository root (the directory that holds the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// The cache of built stack binaries and Go module/build caches, outside the clone so a fresh clone reuses
/// them: `$STACK_CACHE_DIR`, else `$XDG_CACHE_HOME/otel-rust-stack`, else `~/.cache/otel-rust-stack` (the
/// rule of `stack/upstream-build.sh` and `otel-collector/build.sh`). Tests find the binaries through
/// [`crate::Binaries::provisioned`], not by looking here.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STACK_CACHE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("otel-rust-stack")
}

/// The directory `stack up` keeps its state, rendered configs, data and logs in (`stack/.run`, git-ignored).
pub fn run_dir() -> PathBuf {
    repo_root().join("stack").join(".run")
}
