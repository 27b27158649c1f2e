//! Where the repository and the runner's state are.

use std::path::PathBuf;

/// The repository root (the directory that holds the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// The directory `stack up` keeps its state, rendered configs, data and logs in (`stack/.run`, git-ignored).
pub fn run_dir() -> PathBuf {
    repo_root().join("stack").join(".run")
}
