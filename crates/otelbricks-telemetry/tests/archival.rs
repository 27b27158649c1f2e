//! Log archival on a timer (feature `log-archival`): old compressed rotations move to `archive/`, expired
//! archives are deleted, fresh files and the active log are left alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test
#![cfg(feature = "log-archival")]

mod common;

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::eventually;

use otelbricks_telemetry::{ConsoleFormat, LogArchival};

fn touch(path: &Path, age: Duration) {
    let f = File::create(path).expect("create");
    f.set_modified(SystemTime::now() - age).expect("set mtime");
}

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn old_rotations_are_archived_and_expired_archives_deleted_on_the_timer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path();
    std::fs::create_dir_all(logs.join("archive")).expect("archive dir");
    touch(&logs.join("svc.json.3.gz"), 40 * DAY); // older than archive_after: archived
    touch(&logs.join("svc.json.1.gz"), DAY); // fresh rotation: stays
    touch(
        &logs.join("archive/svc.json.20240101T000000Z.gz"),
        400 * DAY,
    ); // past retention: deleted
    touch(
        &logs.join("archive/svc.json.20251101T000000Z.gz"),
        100 * DAY,
    ); // within retention: stays

    let guard = otelbricks_telemetry::builder("svc")
        .env_lookup(|_| None)
        .log_dir(logs)
        .console(ConsoleFormat::Off)
        .without_admin()
        .log_archival(LogArchival::default().interval(Duration::from_millis(200)))
        .install()
        .expect("install");

    let names = || -> Vec<String> {
        std::fs::read_dir(logs.join("archive"))
            .expect("archive dir")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    };
    let archived = eventually(Duration::from_secs(10), || {
        let names = names();
        let moved = !logs.join("svc.json.3.gz").exists();
        let expired_gone = !names.iter().any(|n| n.starts_with("svc.json.20240101"));
        (moved && expired_gone).then_some(names)
    })
    .unwrap_or_else(|| {
        panic!(
            "archival did not happen in 10 s; archive/ holds {:?}",
            names()
        )
    });
    drop(guard);

    assert!(
        logs.join("svc.json.1.gz").exists(),
        "a fresh rotation is left in place"
    );
    assert!(
        logs.join("svc.json").exists(),
        "the active log is left in place"
    );
    assert!(
        archived.iter().any(|n| n.starts_with("svc.json.20251101")),
        "an archive within retention stays"
    );
    assert_eq!(
        archived.iter().filter(|n| n.ends_with(".gz")).count(),
        2,
        "the old rotation joined the kept archive: {archived:?}"
    );
}

#[test]
fn an_invalid_archival_variable_is_refused_before_anything_is_installed() {
    let err = otelbricks_telemetry::builder("svc")
        .env_lookup(|k| match k {
            "TELEMETRY_LOG_ARCHIVE" => Some("true".into()),
            "TELEMETRY_LOG_ARCHIVE_AFTER" => Some("a month".into()),
            _ => None,
        })
        .validate()
        .expect_err("invalid duration");
    assert!(
        err.to_string().contains("TELEMETRY_LOG_ARCHIVE_AFTER"),
        "{err}"
    );
}
