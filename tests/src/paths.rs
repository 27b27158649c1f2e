//! Where the repository and the stack's cached binaries are.

use std::path::PathBuf;

/// The repository root (the directory that holds the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
