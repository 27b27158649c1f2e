//! `stack up|down|status`: the observability stack on loopback without Docker.
fn main() {}
