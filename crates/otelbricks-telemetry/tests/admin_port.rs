//! A taken admin port is an error of `install`, before any global is set (its own process, so it
//! is the first install).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[test]
fn a_taken_admin_port_fails_install_before_any_global_is_set() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = otelbricks_telemetry::builder("port-test")
        .env_lookup(|_| None)
        .log_dir(tmp.path())
        .admin_addr(addr)
        .install()
        .expect_err("the port is taken");
    assert!(
        matches!(err, otelbricks_telemetry::TelemetryError::AdminListener { addr: a, .. } if a == addr),
        "{err}"
    );
    assert!(
        !tracing::dispatcher::has_been_set(),
        "no global subscriber was installed"
    );
    // The failed install left nothing behind: a second one on a free port works.
    let guard = otelbricks_telemetry::builder("port-test")
        .env_lookup(|_| None)
        .log_dir(tmp.path())
        .admin_addr("127.0.0.1:0".parse().expect("addr"))
        .install()
        .expect("install on a free port");
    assert!(guard.admin_addr().is_some());
    let second = otelbricks_telemetry::builder("again")
        .env_lookup(|_| None)
        .without_admin()
        .install();
    assert!(matches!(
        second,
        Err(otelbricks_telemetry::TelemetryError::SubscriberAlreadySet(
            _
        ))
    ));
}
