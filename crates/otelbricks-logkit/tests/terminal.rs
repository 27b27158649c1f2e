//! Human-readable output never passes control characters from the logs (or from file names) to
//! the terminal: ESC, CR and newlines inside values are shown escaped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

fn logkit(args: &[&std::ffi::OsStr]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_logkit"))
        .args(args)
        .output()
        .expect("runs");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// No ESC, CR or other control character except the report's own line ends.
fn assert_clean(text: &str) {
    for (i, c) in text.char_indices() {
        assert!(
            c == '\n' || !c.is_control(),
            "control character {c:?} at byte {i} in:\n{text}"
        );
    }
}

#[test]
fn text_reports_escape_control_characters_from_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("evil\u{1b}]0;owned\u{7}.json");
    let hostile = r#"\u001b[2J\r\nrequests: 999999"#;
    let lines = [
        format!(
            r#"{{"timestamp":"2026-12-01T10:00:00Z","level":"INFO","message":"Request completed","method":"GET","path":"/a{hostile}","status_code":200,"duration":9.5,"request_id":"r{hostile}","user_id":"u{hostile}"}}"#
        ),
        format!(
            r#"{{"timestamp":"2026-12-01T10:00:01Z","level":"ERROR","message":"Request failed","method":"GET","path":"/b","status_code":"5{hostile}","duration":0.1,"error_type":"E{hostile}","request_id":"q{hostile}"}}"#
        ),
        "not json\u{1b}[31m".to_owned(),
    ];
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    for cmd in ["summary", "errors", "perf"] {
        let (out, err) = logkit(&[cmd.as_ref(), p.as_os_str()]);
        assert_clean(&out);
        assert_clean(&err);
        assert!(
            !out.contains("\nrequests: 999999"),
            "{cmd}: forged line:\n{out}"
        );
    }
    let (summary, _) = logkit(&["summary".as_ref(), p.as_os_str()]);
    assert!(
        summary.contains(r"/a\u{1b}[2J\r\nrequests: 999999"),
        "{summary}"
    );
    assert!(
        summary.contains(r"evil\u{1b}]0;owned\u{7}.json:3"),
        "{summary}"
    );
    let (errors, _) = logkit(&["errors".as_ref(), p.as_os_str()]);
    assert!(
        errors.contains(r"E\u{1b}[2J\r\nrequests: 999999"),
        "{errors}"
    );
    assert!(errors.contains(r"q\u{1b}[2J\r\n"), "{errors}");
}

#[test]
fn file_names_in_rotation_messages_and_errors_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let name = "app\u{1b}[2J\r.json";
    std::fs::write(dir.path().join(name), b"{\"a\":1}\n").unwrap();
    let (out, err) = logkit(&[
        "rotate".as_ref(),
        "--dir".as_ref(),
        dir.path().as_os_str(),
        "--max-size".as_ref(),
        "1".as_ref(),
        "--settle".as_ref(),
        "0s".as_ref(),
    ]);
    assert_clean(&out);
    assert_clean(&err);
    assert!(out.contains(r"app\u{1b}[2J\r.json"), "{out}");
    let missing = dir.path().join("missing\u{1b}[31m.json");
    let (out, err) = logkit(&["summary".as_ref(), missing.as_os_str()]);
    assert_clean(&out);
    assert_clean(&err);
    assert!(err.contains(r"missing\u{1b}[31m.json"), "{err}");
}
