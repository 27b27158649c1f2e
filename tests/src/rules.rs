//! Helpers of the static tests: reading the repository's files, and the assertions on rules that each return
//! a list of violations. They panic with the file or the rule in the message: they are for tests.

use serde_json::Value;

use crate::paths::repo_root;

/// The text of the repository file at `rel` (relative to the root); panics naming it when it cannot be read.
#[track_caller]
pub fn read(rel: &str) -> String {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `text` parsed as YAML (into JSON values, so `json!` literals compare with it); panics when it is not YAML.
#[track_caller]
pub fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("invalid YAML: {e}"))
}

/// Panics listing `violations`, if there are any, under the rule's name.
#[track_caller]
pub fn assert_clean(rule: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "{rule}:\n  {}",
        violations.join("\n  ")
    );
}

/// Panics unless a violation mentions `needle`: the rule caught the deliberately broken copy.
#[track_caller]
pub fn assert_caught(violations: &[String], needle: &str) {
    assert!(
        violations.iter().any(|v| v.contains(needle)),
        "expected a violation mentioning {needle:?}, got {violations:#?}"
    );
}
