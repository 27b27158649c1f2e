//! Archives written by otelbricks-logfiles, read back by the analysis.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use otelbricks_logfiles::{self as manage, ManageConfig};
use std::time::Duration;

fn cfg(dir: &std::path::Path) -> ManageConfig {
    ManageConfig {
        dir: dir.to_path_buf(),
        settle: Duration::ZERO,
        ..ManageConfig::default()
    }
}

#[test]
fn encrypted_archives_are_read_with_the_identity_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (secret, public) = otelbricks_logkit::crypt::generate_identity();
    let idf = d.join("id.txt");
    std::fs::write(&idf, format!("{secret}\n")).unwrap();
    let logs = d.join("logs");
    std::fs::create_dir(&logs).unwrap();
    let lines: String = (0..100)
        .map(|i| format!("{{\"message\":\"Request completed\",\"status_code\":{},\"path\":\"/p\",\"duration\":0.{i:02}}}\n", if i % 4 == 0 { 500 } else { 200 }))
        .collect();
    std::fs::write(logs.join("app.json"), &lines).unwrap();
    let c = ManageConfig {
        max_size: 1,
        recipients: vec![public],
        archive_after: Duration::ZERO,
        ..cfg(&logs)
    };
    manage::rotate(&c).unwrap();
    let archived = manage::archive(&c).unwrap();
    assert_eq!(archived.len(), 1);
    assert!(archived[0].to_string_lossy().ends_with(".gz.age"));
    let raw = std::fs::read(&archived[0]).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1"));
    let args = vec![archived[0].display().to_string()];
    let o = otelbricks_logkit::Options {
        identity: Some(idf.clone()),
        ..otelbricks_logkit::Options::default()
    };
    let rep = otelbricks_logkit::analyze(&args, &o).unwrap();
    assert_eq!(
        (rep.overall.total_requests, rep.overall.failed_requests),
        (100, 25)
    );
    // Without an identity, or with the wrong one: a clear error, no crash.
    let err = otelbricks_logkit::analyze(&args, &otelbricks_logkit::Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no identity"), "{err}");
    let (other, _) = otelbricks_logkit::crypt::generate_identity();
    let wrong = d.join("wrong.txt");
    std::fs::write(&wrong, format!("{other}\n")).unwrap();
    let err = otelbricks_logkit::analyze(
        &args,
        &otelbricks_logkit::Options {
            identity: Some(wrong),
            ..otelbricks_logkit::Options::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("decrypt"), "{err}");
    // A directory with the active log and the encrypted archive: the archive is read too.
    std::fs::write(logs.join("app.json"), &lines).unwrap();
    let rep = otelbricks_logkit::analyze(&[logs.display().to_string()], &o).unwrap();
    assert_eq!(rep.overall.total_requests, 200);
}

#[test]
fn an_age_input_with_a_huge_header_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (secret, _) = otelbricks_logkit::crypt::generate_identity();
    let idf = d.join("id.txt");
    std::fs::write(&idf, format!("{secret}\n")).unwrap();
    // A 10 MB stanza: the age crate alone spends minutes parsing such a header.
    let mut data = b"age-encryption.org/v1\n-> X25519 ".to_vec();
    data.extend(std::iter::repeat_n(b'A', 10 << 20));
    data.extend_from_slice(b"\n--- 0123456789\npayload");
    let p = d.join("big-header.json.age");
    std::fs::write(&p, &data).unwrap();
    let err = otelbricks_logkit::analyze(
        &[p.display().to_string()],
        &otelbricks_logkit::Options {
            identity: Some(idf),
            ..otelbricks_logkit::Options::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("age header is longer than 64 KiB"), "{err}");
}

#[test]
fn logkit_rotate_with_a_pattern_leaves_unrelated_gz_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let unrelated = [
        "backup.tar.gz",
        "db.11.gz",
        "other.json.12.gz",
        "app.json.bak.gz",
    ];
    for name in unrelated {
        std::fs::write(d.join(name), b"not ours").unwrap();
    }
    for i in 0..12 {
        std::fs::write(d.join("app.json"), format!("{{\"round\":{i}}}\n")).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_logkit"))
            .args(["rotate", "--pattern", "app.json", "--keep", "10"])
            .args(["--max-size", "1", "--settle", "0s", "--dir"])
            .arg(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    assert!(d.join("app.json.10.gz").exists() && !d.join("app.json.11.gz").exists());
    for name in unrelated {
        assert!(d.join(name).exists(), "{name} was deleted");
    }
}
