//! Waiting for a condition: poll it with a deadline, never sleep and hope. The helpers are the
//! workspace's shared [`test_support`] ones; every wait in the tests and in the stack runner goes
//! through them.

pub use test_support::{eventually, wait_until};
