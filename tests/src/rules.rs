//! Assertions of the static tests, whose rules each return a list of violations.

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
