//! Rotation, compression, archival and cleanup on a real directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use otelbricks_logfiles::{self as manage, LineAppender, ManageConfig};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn cfg(dir: &Path) -> ManageConfig {
    ManageConfig {
        dir: dir.to_path_buf(),
        settle: Duration::ZERO,
        ..ManageConfig::default()
    }
}

/// All lines of every log file in `dir` (active, pending, compressed), decompressed.
fn all_lines(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() && !p.file_name().unwrap().to_string_lossy().contains("tmp") {
            let data = manage::read_decompressed(&p).unwrap();
            assert!(
                data.is_empty() || data.ends_with(b"\n"),
                "{} ends mid-line",
                p.display()
            );
            out.extend(String::from_utf8(data).unwrap().lines().map(String::from));
        }
    }
    out
}

#[test]
fn rotation_under_concurrent_writers_loses_and_splits_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let active = dir.path().join("app.json");
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let active = active.clone();
            std::thread::spawn(move || {
                let mut a = LineAppender::open(&active).unwrap();
                let mut n = 0u64;
                let pad = "x".repeat(100 + w * 37);
                while n < 15_000 {
                    a.write_line(format!("{{\"w\":{w},\"n\":{n},\"pad\":\"{pad}\"}}").as_bytes())
                        .unwrap();
                    n += 1;
                    if n.is_multiple_of(200) {
                        // Spread the writes over time so that rotations interleave with them.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                n
            })
        })
        .collect();
    let c = ManageConfig {
        max_size: 100_000,
        keep: 100_000,
        settle: Duration::from_millis(50),
        ..cfg(dir.path())
    };
    let mut rotations = 0;
    while !writers.iter().all(|h| h.is_finished()) {
        rotations += manage::rotate(&c).unwrap().rotated.len();
        // Pacing: the rotator runs every 5 ms while the writers write (the load under test), not a wait.
        std::thread::sleep(Duration::from_millis(5));
    }
    let counts: Vec<u64> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    // The last rotations must age past `settle` (50 ms) before a pass may compress them: the time passing is
    // what the rotator waits for, not a condition the test could poll.
    std::thread::sleep(Duration::from_millis(100));
    manage::rotate(&c).unwrap();
    assert!(rotations >= 3, "only {rotations} rotations");
    let lines = all_lines(dir.path());
    let mut seen = HashSet::new();
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("split line {l:?}: {e}"));
        assert!(
            seen.insert((v["w"].as_u64().unwrap(), v["n"].as_u64().unwrap())),
            "duplicate {l}"
        );
    }
    let expected: u64 = counts.iter().sum();
    assert_eq!(lines.len() as u64, expected, "lines lost");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("pending"))
    );
}

#[test]
fn crash_mid_compression_is_finished_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let content: String = (0..5000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    // logroller's state after a crash: pending file and a half-written temporary archive.
    std::fs::write(d.join("app.json.pending.7"), &content).unwrap();
    std::fs::write(
        d.join("app.json.pending.7.gz.tmp"),
        [0x1f, 0x8b, 8, 0, 1, 2],
    )
    .unwrap();
    // Our own half-done temporary, and an older complete rotation.
    std::fs::write(d.join("app.json.pending.7.gz.logkit-tmp"), b"junk").unwrap();
    std::fs::write(d.join("app.json.1.gz"), {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"{\"old\":1}\n").unwrap();
        e.finish().unwrap()
    })
    .unwrap();
    let out = manage::rotate(&cfg(d)).unwrap();
    assert_eq!(out.compressed, vec![d.join("app.json.1.gz")]);
    let names: HashSet<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        HashSet::from(["app.json.1.gz".to_string(), "app.json.2.gz".to_string()])
    );
    assert_eq!(
        String::from_utf8(manage::read_decompressed(&d.join("app.json.1.gz")).unwrap()).unwrap(),
        content
    );
    assert_eq!(
        manage::read_decompressed(&d.join("app.json.2.gz")).unwrap(),
        b"{\"old\":1}\n"
    );
}

#[test]
fn a_rotated_file_still_being_written_is_not_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("app.json.pending.1"), b"{\"a\":1}\n").unwrap();
    let c = ManageConfig {
        settle: Duration::from_secs(3600),
        ..cfg(d)
    };
    let out = manage::rotate(&c).unwrap();
    assert_eq!(out.deferred, vec![d.join("app.json.pending.1")]);
    assert!(d.join("app.json.pending.1").exists());
}

#[test]
fn oversized_files_rotate_keep_n_and_new_files_are_mode_0640() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = ManageConfig {
        max_size: 10,
        keep: 2,
        ..cfg(d)
    };
    for i in 0..4 {
        std::fs::write(d.join("app.json"), format!("{{\"round\":{i}}}\n")).unwrap();
        manage::rotate(&c).unwrap();
    }
    assert!(d.join("app.json.1.gz").exists() && d.join("app.json.2.gz").exists());
    assert!(!d.join("app.json.3.gz").exists());
    assert_eq!(
        manage::read_decompressed(&d.join("app.json.1.gz")).unwrap(),
        b"{\"round\":3}\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["app.json", "app.json.1.gz"] {
            let mode = std::fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o640, "{f}");
        }
    }
    // Small files are left alone.
    let big = ManageConfig {
        max_size: 1 << 20,
        ..c
    };
    assert!(manage::rotate(&big).unwrap().rotated.is_empty());
}

fn set_age(p: &Path, days: u64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .unwrap();
}

#[test]
fn archive_moves_old_compressed_logs_and_cleanup_deletes_expired_archives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = ManageConfig {
        max_size: 1,
        ..cfg(d)
    };
    std::fs::write(
        d.join("app.json"),
        b"{\"message\":\"Request completed\",\"status_code\":200}\n",
    )
    .unwrap();
    manage::rotate(&c).unwrap();
    std::fs::write(d.join("app.json.2.gz"), b"").unwrap();
    set_age(&d.join("app.json.1.gz"), 40);
    let moved = manage::archive(&c).unwrap();
    assert_eq!(moved.len(), 1);
    assert!(!d.join("app.json.1.gz").exists() && d.join("app.json.2.gz").exists());
    assert!(moved[0].starts_with(d.join("archive")));
    assert!(
        manage::cleanup(&c).unwrap().is_empty(),
        "40-day-old archive is within retention"
    );
    set_age(&moved[0], 400);
    assert_eq!(manage::cleanup(&c).unwrap(), moved);
}

#[cfg(feature = "age")]
#[test]
fn invalid_recipient_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = ManageConfig {
        recipients: vec!["age1notakey".into()],
        ..cfg(dir.path())
    };
    let err = manage::archive(&c).unwrap_err();
    assert!(
        matches!(&err, manage::Error::Recipient { key, .. } if key == "age1notakey"),
        "{err}"
    );
}

#[cfg(not(feature = "age"))]
#[test]
fn encryption_without_the_age_feature_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = ManageConfig {
        recipients: vec!["age1anykey".into()],
        ..cfg(dir.path())
    };
    assert!(matches!(
        manage::archive(&c),
        Err(manage::Error::NoEncryption)
    ));
}

#[test]
fn an_invalid_pattern_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = ManageConfig {
        pattern: "[".into(),
        ..cfg(dir.path())
    };
    assert!(matches!(
        manage::rotate(&c),
        Err(manage::Error::Pattern { .. })
    ));
}

#[test]
fn rotate_archive_and_cleanup_touch_only_the_files_the_pattern_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let unrelated = [
        "backup.tar.gz",
        "other.gz",
        "notes.1.gz",
        "other.json.12.gz",
        "other.json.pending.3",
        "other.json.pending.4.gz.tmp",
        "other.json",
    ];
    for name in unrelated {
        std::fs::write(d.join(name), b"not ours").unwrap();
        set_age(&d.join(name), 400);
    }
    std::fs::create_dir(d.join("archive")).unwrap();
    let unrelated_archives = ["other.json.20200101T000000Z.gz", "db.tar.gz", "keys.age"];
    for name in unrelated_archives {
        std::fs::write(d.join("archive").join(name), b"not ours").unwrap();
        set_age(&d.join("archive").join(name), 400);
    }
    let c = ManageConfig {
        pattern: "app.json".into(),
        max_size: 1,
        keep: 1,
        archive_after: Duration::ZERO,
        retention: Duration::ZERO,
        ..cfg(d)
    };
    for i in 0..3 {
        std::fs::write(d.join("app.json"), format!("{{\"round\":{i}}}\n")).unwrap();
        manage::rotate(&c).unwrap();
    }
    assert!(d.join("app.json.1.gz").exists() && !d.join("app.json.2.gz").exists());
    let archived = manage::archive(&c).unwrap();
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert_eq!(manage::cleanup(&c).unwrap(), archived);
    for name in unrelated {
        assert!(d.join(name).exists(), "{name} was touched");
    }
    for name in unrelated_archives {
        assert!(
            d.join("archive").join(name).exists(),
            "archive/{name} was touched"
        );
    }
}

#[cfg(feature = "writer")]
#[test]
fn the_rotations_the_writer_makes_are_the_ones_archival_finds() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(100));
    {
        let mut w = manage::RotatingFile::open(d, "app.json", 1_000, 3).unwrap();
        for _ in 0..50 {
            w.write_all(line.as_bytes()).unwrap();
        }
        w.flush().unwrap();
    } // dropping waits for the compression of the last rotation
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for i in 1..=3 {
        let name = manage::naming::compressed("app.json", i);
        assert!(names.contains(&name), "{name} missing in {names:?}");
    }
    // Nothing is left for `rotate` to finish, and archival moves exactly the writer's rotations.
    let c = ManageConfig {
        pattern: "app.json".into(),
        archive_after: Duration::ZERO,
        ..cfg(d)
    };
    let out = manage::rotate(&c).unwrap();
    assert!(
        out.rotated.is_empty() && out.compressed.is_empty() && out.removed.is_empty(),
        "{out:?}"
    );
    assert_eq!(manage::archive(&c).unwrap().len(), 3);
    let mut total = manage::read_decompressed(&d.join("app.json"))
        .unwrap()
        .len();
    for e in std::fs::read_dir(d.join("archive")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(manage::naming::base_of(&name), Some("app.json"), "{name}");
        let data = manage::read_decompressed(&p).unwrap();
        assert!(data.ends_with(b"\n"), "{name} ends mid-line");
        total += data.len();
    }
    assert!(total <= 50 * line.len() && total.is_multiple_of(line.len()));
}
