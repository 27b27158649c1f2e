//! Analysis results against a reference computation, the Python design's own analyser, and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
use common::*;
use std::io::Write;
use std::process::Command;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn check_against_reference(rep: &otelbricks_logkit::Report, r: &Reference) {
    let s = &rep.overall;
    assert_eq!(s.total_requests, r.total, "total_requests");
    assert_eq!(s.successful_requests, r.successful, "successful_requests");
    assert_eq!(s.failed_requests, r.failed, "failed_requests");
    assert_eq!(s.unique_users as usize, r.users, "unique_users");
    let eps: Vec<(String, u64)> = s
        .endpoints
        .iter()
        .map(|e| (e.path.clone(), e.count))
        .collect();
    assert_eq!(
        eps, r.endpoints,
        "endpoints (top 20, ties in first-seen order)"
    );
    for c in &s.status_codes {
        assert_eq!(
            Some(&c.count),
            r.status.get(&c.status_code),
            "status {}",
            c.status_code
        );
    }
    assert_eq!(s.status_codes.len(), r.status.len());
    let errs: Vec<(String, u64)> = s
        .errors
        .error_counts
        .iter()
        .map(|e| (e.error_type.clone(), e.count))
        .collect();
    assert_eq!(errs, r.errors, "error counts (most_common order)");
    assert_eq!(s.errors.top_errors.len(), r.errors.len().min(10));
    assert_eq!(s.performance.percentile_method, "exact");
    assert_eq!(s.performance.endpoint_stats.len(), r.perf.len());
    for e in &s.performance.endpoint_stats {
        let (n, avg, min, max, p50, p95, p99) = r.perf[&e.path];
        assert_eq!(e.count, n, "{} count", e.path);
        assert!(close(e.avg, avg), "{} avg {} vs {}", e.path, e.avg, avg);
        assert_eq!(
            (e.min, e.max, e.p50, e.p95, e.p99),
            (min, max, p50, p95, p99),
            "{}",
            e.path
        );
    }
    let slow: Vec<(String, f64)> = s
        .performance
        .slow_requests
        .iter()
        .map(|x| (x.endpoint.clone(), x.duration))
        .collect();
    assert_eq!(slow, r.slow, "slowest requests");
}

#[test]
fn summary_equals_reference_computation_on_generated_logs() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    let lines = gen_lines(6000, 1, 97, 42);
    write_lines(&p, &lines);
    let rep = analyze(&[&p]);
    check_against_reference(&rep, &reference(&lines.join("\n")));
    let malformed = rep
        .skipped_lines
        .reasons
        .iter()
        .find(|r| r.reason == "malformed_json")
        .unwrap();
    assert_eq!(malformed.count, 6000_u64.div_ceil(97));
    assert_eq!(malformed.first_lines[0].line, 1);
    assert_eq!(malformed.first_lines[1].line, 98);
}

#[test]
fn results_do_not_depend_on_threads_or_block_size() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    write_lines(&p, &gen_lines(5000, 2, 50, 7));
    let a = analyze_with(
        &[&p],
        &otelbricks_logkit::Options {
            threads: 1,
            chunk_bytes: 1 << 20,
            ..opts()
        },
    );
    let b = analyze_with(
        &[&p],
        &otelbricks_logkit::Options {
            threads: 3,
            chunk_bytes: 1000,
            ..opts()
        },
    );
    assert_eq!(a, b);
    // Plain files are parsed in place from a memory mapping by default; reading them with
    // pread instead gives the same results.
    assert!(opts().mmap);
    let c = analyze_with(
        &[&p],
        &otelbricks_logkit::Options {
            threads: 3,
            chunk_bytes: 1000,
            mmap: false,
            ..opts()
        },
    );
    assert_eq!(a, c);
}

#[test]
fn gzip_and_plain_inputs_give_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    let gz = dir.path().join("app.json.1.gz");
    write_lines(&p, &gen_lines(4000, 1, 0, 3));
    gzip(&p, &gz);
    let mut a = analyze(&[&p]);
    let mut b = analyze(&[&gz]);
    a.sources.clear();
    b.sources.clear();
    assert_eq!(a, b);
}

#[test]
fn concatenated_gzip_members_are_all_read() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let lines = gen_lines(2000, 1, 0, 5);
    write_lines(&p1, &lines[..1000]);
    write_lines(&p2, &lines[1000..]);
    let (g1, g2) = (dir.path().join("a.gz"), dir.path().join("b.gz"));
    gzip(&p1, &g1);
    gzip(&p2, &g2);
    let cat = dir.path().join("cat.json.gz");
    let mut data = std::fs::read(&g1).unwrap();
    data.extend(std::fs::read(&g2).unwrap());
    std::fs::write(&cat, data).unwrap();
    check_against_reference(&analyze(&[&cat]), &reference(&lines.join("\n")));
}

#[test]
fn summary_is_grouped_per_utc_day_and_days_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    write_lines(&p, &gen_lines(3000, 3, 0, 11));
    let rep = analyze(&[&p]);
    assert!(rep.days.len() >= 3, "days: {}", rep.days.len());
    assert_eq!(rep.days[0].date.as_deref(), Some("2026-11-27"));
    let total: u64 = rep.days.iter().map(|d| d.total_requests).sum();
    assert_eq!(total, rep.overall.total_requests);
    let errors: u64 = rep.days.iter().map(|d| d.errors.total).sum();
    assert_eq!(errors, rep.overall.errors.total);
    assert!(rep.days.iter().map(|d| d.unique_users).max().unwrap() <= rep.overall.unique_users);
}

#[test]
fn since_and_until_filter_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    let lines = gen_lines(3000, 2, 0, 13);
    write_lines(&p, &lines);
    let since = otelbricks_logkit::timestamp::parse("2026-11-28T00:00:00Z").unwrap();
    let rep = analyze_with(
        &[&p],
        &otelbricks_logkit::Options {
            since: Some(since),
            ..opts()
        },
    );
    let day2: Vec<String> = lines
        .iter()
        .filter(|l| l.contains("\"2026-11-28") || l.contains("\"2026-11-29"))
        .cloned()
        .collect();
    assert_eq!(
        rep.overall.total_requests,
        reference(&day2.join("\n")).total
    );
    let rep2 = analyze_with(
        &[&p],
        &otelbricks_logkit::Options {
            until: Some(since),
            ..opts()
        },
    );
    assert_eq!(
        rep.overall.total_requests + rep2.overall.total_requests,
        reference(&lines.join("\n")).total
    );
    assert!(rep.filtered_out > 0);
}

#[test]
fn error_timeline_is_per_minute_with_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    let lines = [
        r#"{"timestamp":"2026-11-27T10:00:01Z","level":"ERROR","error_type":"KeyError","request_id":"r1"}"#,
        r#"{"timestamp":"2026-11-27T10:00:59.9Z","level":"CRITICAL","request_id":"r2"}"#,
        r#"{"timestamp":"2026-11-27T12:00:30+02:00","level":"ERROR","error_type":"KeyError","request_id":"r3"}"#,
        r#"{"level":"ERROR","error_type":null}"#,
    ];
    write_lines(&p, &lines.map(String::from));
    let e = analyze(&[&p]).overall.errors;
    assert_eq!(e.total, 4);
    assert_eq!(e.top_errors[0].error_type, "KeyError");
    assert_eq!(e.top_errors[1].error_type, "Unknown");
    assert_eq!(e.top_errors[2].error_type, "null");
    assert_eq!(e.timeline[0].minute, "2026-11-27T10:00Z");
    assert_eq!(e.timeline[0].count, 3);
    assert_eq!(e.timeline[0].request_ids, ["r1", "r2", "r3"]);
    assert_eq!(e.timeline[1].minute, "unknown");
}

/// Runs the Python design's analyser on a file written by its generator and compares counts.
#[test]
fn counts_equal_the_python_designs_generate_daily_summary() {
    let scripts = python_design_dir();
    let gen_py = scripts.join("gen_logs.py");
    let analyzer_py = scripts.join("log_analyzer.py");
    assert!(
        gen_py.is_file() && analyzer_py.is_file(),
        "the Python design's scripts are missing: expected {} and {}",
        gen_py.display(),
        analyzer_py.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("python.json");
    let st = Command::new("python3")
        .arg(&gen_py)
        .arg("20000")
        .arg(&p)
        .arg("100")
        .status();
    let st = st.unwrap_or_else(|e| panic!("python3 is needed to run {}: {e}", gen_py.display()));
    assert!(st.success(), "gen_logs.py failed");
    let out = Command::new("python3")
        .arg(&analyzer_py)
        .arg(&p)
        .output()
        .expect("python3 runs log_analyzer.py");
    assert!(
        out.status.success(),
        "the Python analyser failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the Python analyser prints JSON");
    let rep = analyze(&[&p]);
    assert_eq!(
        rep.overall.total_requests,
        python["total_requests"].as_u64().unwrap()
    );
    assert_eq!(
        rep.overall.failed_requests,
        python["failed"].as_u64().unwrap()
    );
    assert_eq!(
        rep.overall.unique_users,
        python["unique_users"].as_u64().unwrap()
    );
    let errs = python["errors"].as_object().unwrap();
    assert_eq!(rep.overall.errors.error_counts.len(), errs.len());
    for e in &rep.overall.errors.error_counts {
        assert_eq!(
            Some(e.count),
            errs[&e.error_type].as_u64(),
            "{}",
            e.error_type
        );
    }
    assert_eq!(rep.skipped_lines.total, 200);
    // And the full reference on the same file.
    check_against_reference(&rep, &reference(&std::fs::read_to_string(&p).unwrap()));
}

#[test]
fn percentiles_switch_to_a_sketch_within_one_percent() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    let lines = gen_lines(8000, 1, 0, 17);
    write_lines(&p, &lines);
    let r = reference(&lines.join("\n"));
    let rep = analyze_with(
        &[&p],
        &otelbricks_logkit::Options {
            exact_limit: 100,
            ..opts()
        },
    );
    assert_eq!(rep.overall.performance.percentile_method, "sketch");
    for e in &rep.overall.performance.endpoint_stats {
        let (n, _, min, max, p50, p95, p99) = r.perf[&e.path];
        assert_eq!((e.count, e.min, e.max), (n, min, max));
        for (got, want) in [(e.p50, p50), (e.p95, p95), (e.p99, p99)] {
            assert!(
                (got - want).abs() <= 0.01 * want.abs() + 1e-9,
                "{}: {got} vs {want}",
                e.path
            );
        }
    }
}

// ---------- bad input ----------

fn skipped(rep: &otelbricks_logkit::Report, reason: &str) -> u64 {
    rep.skipped_lines
        .reasons
        .iter()
        .find(|r| r.reason == reason)
        .map_or(0, |r| r.count)
}

#[test]
fn malformed_non_object_invalid_utf8_and_blank_lines_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(b"{\"message\":\"Request completed\",\"status_code\":200}\n")
        .unwrap();
    f.write_all(b"{\"timestamp\": \"broken\n").unwrap();
    f.write_all(b"[1,2,3]\n").unwrap();
    f.write_all(b"{\"message\":\"Request completed\",\"path\":\"/\xff\xfe\"}\n")
        .unwrap();
    f.write_all(b"\n").unwrap();
    f.write_all(b"{\"message\":\"Request completed\"}\r\n")
        .unwrap();
    f.write_all(b"{\"message\":\"Request completed\",\"duration\":\"slow\"}")
        .unwrap();
    drop(f);
    let rep = analyze(&[&p]);
    assert_eq!(skipped(&rep, "malformed_json"), 1);
    assert_eq!(skipped(&rep, "not_an_object"), 1);
    assert_eq!(skipped(&rep, "invalid_utf8"), 1);
    assert_eq!(skipped(&rep, "blank_line"), 1);
    assert_eq!(skipped(&rep, "invalid_duration"), 1);
    assert_eq!(rep.skipped_lines.total, 4);
    // Lines missing fields count as the Python design counts them: no status code -> failed, status 0.
    assert_eq!(rep.overall.total_requests, 3);
    assert_eq!(rep.overall.successful_requests, 1);
    assert_eq!(rep.overall.failed_requests, 2);
    assert!(
        rep.overall
            .status_codes
            .iter()
            .any(|s| s.status_code == "0" && s.count == 2)
    );
    assert_eq!(rep.overall.endpoints[0].path, "unknown");
    let utf8 = rep
        .skipped_lines
        .reasons
        .iter()
        .find(|r| r.reason == "invalid_utf8")
        .unwrap();
    assert_eq!(utf8.first_lines[0].line, 4);
    assert_eq!(rep.lines_read, 7);
}

#[test]
fn over_long_lines_are_told_apart_the_same_way_when_mapped_read_or_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    let gz = dir.path().join("app.json.1.gz");
    // Lines of 43..=100 bytes around a 60-byte limit, in ranges smaller than, equal to and
    // larger than a line; the last line has no newline.
    let mut text = String::new();
    for i in 0..400usize {
        let pad = "x".repeat((i * 37) % 58);
        text.push_str(&format!(
            r#"{{"message":"Request completed","path":"/{pad}"}}"#
        ));
        if i != 399 {
            text.push('\n');
        }
    }
    std::fs::write(&p, &text).unwrap();
    gzip(&p, &gz);
    let run = |path: &std::path::Path, mmap: bool, chunk: usize| {
        let mut rep = analyze_with(
            &[path],
            &otelbricks_logkit::Options {
                max_line_bytes: 60,
                chunk_bytes: chunk,
                mmap,
                ..opts()
            },
        );
        rep.sources.clear();
        for r in &mut rep.skipped_lines.reasons {
            for l in &mut r.first_lines {
                l.source.clear();
            }
        }
        rep
    };
    let reference = run(&gz, false, 1 << 20);
    assert!(skipped(&reference, "line_too_long") > 50);
    assert!(reference.overall.total_requests > 50);
    for chunk in [7, 60, 61, 64, 100, 4096] {
        assert_eq!(run(&p, true, chunk), reference, "mapped, ranges of {chunk}");
        assert_eq!(run(&p, false, chunk), reference, "pread, ranges of {chunk}");
    }
}

#[test]
fn a_100_mb_line_is_skipped_without_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    writeln!(f, r#"{{"message":"Request completed","status_code":200}}"#).unwrap();
    f.write_all(b"{\"message\":\"").unwrap();
    let block = vec![b'x'; 1 << 20];
    for _ in 0..100 {
        f.write_all(&block).unwrap();
    }
    f.write_all(b"\"}\n").unwrap();
    writeln!(f, r#"{{"message":"Request completed","status_code":500}}"#).unwrap();
    drop(f);
    for mmap in [true, false] {
        let rep = analyze_with(
            &[&p],
            &otelbricks_logkit::Options {
                chunk_bytes: 1 << 20,
                mmap,
                ..opts()
            },
        );
        assert_eq!(skipped(&rep, "line_too_long"), 1, "mmap {mmap}");
        assert_eq!(rep.overall.total_requests, 2, "mmap {mmap}");
        let r = rep
            .skipped_lines
            .reasons
            .iter()
            .find(|r| r.reason == "line_too_long")
            .unwrap();
        assert_eq!(r.first_lines[0].line, 2, "mmap {mmap}");
    }
}

#[test]
fn truncated_gzip_keeps_what_was_read_and_reports_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    write_lines(&p, &gen_lines(20000, 1, 0, 19));
    let gz = dir.path().join("app.json.1.gz");
    gzip(&p, &gz);
    let data = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &data[..data.len() / 2]).unwrap();
    let rep = analyze(&[&gz]);
    assert!(rep.overall.total_requests > 1000);
    assert!(rep.sources[0].error.is_some(), "{:?}", rep.sources);
}

#[test]
fn corrupt_gzip_reports_the_error_and_other_inputs_are_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    write_lines(&good, &gen_lines(500, 1, 0, 23));
    let bad = dir.path().join("bad.json.gz");
    let mut data = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    data.extend(std::iter::repeat_n(0xA5u8, 4000));
    std::fs::write(&bad, data).unwrap();
    let rep = analyze(&[&good, &bad]);
    assert!(rep.overall.total_requests > 0);
    assert!(
        rep.sources
            .iter()
            .any(|s| s.source.ends_with("bad.json.gz") && s.error.is_some())
    );
}

#[test]
fn empty_file_directory_without_logs_and_missing_path_are_errors_when_nothing_else_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, b"").unwrap();
    let sub = dir.path().join("nologs");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("README.txt"), b"hi").unwrap();
    for args in [
        vec![empty.display().to_string()],
        vec![sub.display().to_string()],
        vec!["/nonexistent/x.json".into()],
    ] {
        let err = otelbricks_logkit::analyze(&args, &opts()).unwrap_err();
        assert!(
            matches!(err, otelbricks_logkit::AnalyzeError::NothingRead(_)),
            "{err}"
        );
    }
    // An empty file next to a good one is fine.
    let good = dir.path().join("good.json");
    write_lines(&good, &gen_lines(100, 1, 0, 29));
    assert!(
        otelbricks_logkit::analyze(
            &[empty.display().to_string(), good.display().to_string()],
            &opts()
        )
        .is_ok()
    );
}

#[test]
fn directories_and_globs_expand_to_log_files() {
    let dir = tempfile::tempdir().unwrap();
    let lines = gen_lines(1000, 1, 0, 31);
    write_lines(&dir.path().join("app.json"), &lines[..500]);
    write_lines(&dir.path().join("other.json"), &lines[500..]);
    std::fs::write(dir.path().join("app.json.pending.1.gz.tmp"), b"partial").unwrap();
    let all = reference(&lines.join("\n"));
    assert_eq!(analyze(&[dir.path()]).overall.total_requests, all.total);
    let pattern = format!("{}/*.json", dir.path().display());
    let rep = otelbricks_logkit::analyze(&[pattern], &opts()).unwrap();
    assert_eq!(rep.overall.total_requests, all.total);
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_logkit"))
}

#[test]
fn cli_exit_code_is_zero_when_something_was_analysed_and_nonzero_when_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    write_lines(&good, &gen_lines(300, 1, 10, 37));
    let out = bin()
        .args(["summary", "--json"])
        .arg(&good)
        .arg("/nonexistent.json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "total_requests",
        "successful_requests",
        "failed_requests",
        "unique_users",
        "endpoints",
        "status_codes",
        "errors",
        "performance",
        "skipped_lines",
    ] {
        assert!(v.get(k).is_some(), "missing top-level key {k}");
    }
    let out = bin()
        .args(["errors"])
        .arg("/nonexistent.json")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such file"), "{err}");
}

#[test]
fn cli_reads_stdin_and_writes_text_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    write_lines(&good, &gen_lines(2000, 1, 0, 41));
    let html = dir.path().join("r.html");
    let out = bin()
        .args(["summary", "-", "--html"])
        .arg(&html)
        .stdin(std::fs::File::open(&good).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Top endpoints") && text.contains("p99"),
        "{text}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<svg")
            && page.contains("Errors per minute")
            && page.contains("Status codes")
    );
    assert!(!page.contains("http://") || page.contains("http://www.w3.org/2000/svg"));
    for cmd in ["errors", "perf"] {
        let out = bin().args([cmd, "--json"]).arg(&good).output().unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v.get(if cmd == "errors" {
                "errors"
            } else {
                "performance"
            })
            .is_some()
        );
    }
}

#[test]
fn json_written_straight_from_the_report_equals_the_sorted_value_form_for_every_command() {
    // The value form (serde_json's map sorts keys) is the schema's key order; the report is
    // written without it, so a field declared or a key emitted out of alphabetical order shows
    // up as a byte difference.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.json");
    write_lines(&p, &gen_lines(4000, 3, 97, 23));
    let mut o = opts();
    o.slow_threshold = 0.5;
    let rep = analyze_with(&[&p, &dir.path().join("missing.json")], &o);
    assert!(rep.days.len() >= 3 && !rep.skipped_lines.reasons.is_empty());
    assert!(!rep.overall.performance.slow_requests.is_empty());
    assert!(!rep.overall.errors.timeline.is_empty());
    assert!(rep.sources.iter().any(|s| s.error.is_some()));
    for section in [
        otelbricks_logkit::Section::Summary,
        otelbricks_logkit::Section::Errors,
        otelbricks_logkit::Section::Perf,
    ] {
        let mut direct = Vec::new();
        rep.write_json(section, &mut direct).unwrap();
        let via_value = serde_json::to_vec_pretty(&rep.to_json(section)).unwrap();
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            String::from_utf8(via_value).unwrap(),
            "{section:?}"
        );
    }
    let whole = serde_json::to_vec_pretty(&rep).unwrap();
    let mut summary = Vec::new();
    rep.write_json(otelbricks_logkit::Section::Summary, &mut summary)
        .unwrap();
    assert_eq!(whole, summary);
}
