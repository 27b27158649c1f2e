//! Static checks of `docker-compose.yml`, the `Dockerfile` and `.dockerignore`.
//!
//! No Docker engine runs on the machines these tests run on, so the compose stack is never started here.
//! Instead the file is validated against the Compose Specification's JSON Schema (a copy in
//! `tests/schemas/compose-spec.json`) and against the stack's own rules, each a test of its own, each
//! cross-checked with the config files the services run (collector, Jaeger, Loki, Prometheus) so that a
//! port or a service name changed in one place and not the other fails here. Image versions are checked
//! against `stack/versions.env` in `versions.rs`.
//!
//! Every rule is a function returning the list of violations; next to each rule's test on the real files
//! is a test that feeds it a deliberately broken copy and asserts the rule catches it, so no rule can pass
//! vacuously.
//!
//! One test binary; a module per concern, each rule next to its two tests.

mod dockerfile;
mod document;
mod listeners;
mod mounts;
mod network;
mod services;
mod variables;

use serde_json::Value;
use stack_tests::rules::{read, yaml};

pub(crate) fn compose() -> Value {
    yaml(&read("docker-compose.yml"))
}

/// The real compose file with one change applied: the "deliberately broken copy" of the negative tests.
pub(crate) fn broken(change: impl FnOnce(&mut Value)) -> Value {
    let mut doc = compose();
    change(&mut doc);
    doc
}
