#![allow(dead_code)]
//! Shared helpers: a log generator and a straightforward reference analysis (the Python design's
//! logic, line by line, on serde_json::Value).

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Small deterministic PRNG (xorshift).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` lines over `days` days in our schema (and some odd ones), every `bad`-th malformed.
pub fn gen_lines(n: usize, days: u64, bad: usize, seed: u64) -> Vec<String> {
    let mut r = Rng(seed.max(1));
    let paths = [
        "/api/v1/upload",
        "/api/v1/models",
        "/api/v1/jobs/{id}",
        "/health",
        "/metrics",
    ];
    let errs = ["TimeoutError", "ValueError", "KeyError"];
    let span = days * 86_400_000_000 / n.max(1) as u64;
    let mut t: u64 = 1_795_737_600_000_000; // 2026-11-27T00:00:00Z
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        t += r.below(2 * span.max(1));
        let secs = t / 1_000_000;
        let day = secs / 86_400;
        let (y, m, d) = otelbricks_logkit::timestamp::civil_from_days(day as i64);
        let rem = secs % 86_400;
        let ts = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}{}",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            t % 1_000_000,
            if i % 2 == 0 { "Z" } else { "" }
        );
        if bad > 0 && i % bad == 0 {
            out.push(format!("{{\"timestamp\": \"{ts}\", \"level\": "));
            continue;
        }
        let path = paths[r.below(paths.len() as u64) as usize];
        let user = if r.below(5) == 0 {
            Value::Null
        } else {
            json!(format!("u{}", r.below(50)))
        };
        let rid = format!("req-{i}");
        let v = match r.below(20) {
            0 => {
                json!({"timestamp": ts, "level": "ERROR", "logger": "app", "message": "Request failed",
                        "request_id": rid, "path": path, "error": "boom",
                        "error_type": errs[r.below(3) as usize], "duration": r.f() * 3.0, "user_id": user})
            }
            1 => {
                json!({"timestamp": ts, "level": "CRITICAL", "message": "db down", "request_id": rid})
            }
            2 => {
                json!({"timestamp": ts, "level": "INFO", "message": "Request completed", "path": path,
                        "user_id": user, "duration": r.f() * 12.0, "request_id": rid})
            }
            3 => {
                json!({"timestamp": ts, "level": "DEBUG", "message": "noise", "x": [1, {"y": null}]})
            }
            _ => {
                let status = [200, 201, 204, 302, 400, 404, 429, 500, 503][r.below(9) as usize];
                json!({"timestamp": ts, "level": "INFO", "logger": "app.middleware",
                       "message": "Request completed", "request_id": rid, "method": "GET", "path": path,
                       "status_code": status, "duration": (r.f() * 4.0).powi(3) / 8.0, "user_id": user,
                       "trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"})
            }
        };
        out.push(v.to_string());
    }
    out
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    std::fs::write(path, s).expect("write test log");
}

pub fn gzip(path: &Path, out: &Path) {
    use std::io::Write;
    let data = std::fs::read(path).expect("read");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&data).expect("gzip");
    std::fs::write(out, e.finish().expect("gzip")).expect("write gz");
}

/// (count, avg, min, max, p50, p95, p99)
pub type PerfRow = (u64, f64, f64, f64, f64, f64, f64);

/// The Python design's analysis, straightforwardly.
#[derive(Debug, Default)]
pub struct Reference {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    pub users: usize,
    pub endpoints: Vec<(String, u64)>,
    pub status: HashMap<String, u64>,
    pub errors: Vec<(String, u64)>,
    pub perf: HashMap<String, PerfRow>,
    pub slow: Vec<(String, f64)>,
}

fn key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn most_common(order: &[String], counts: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = order.iter().map(|k| (k.clone(), counts[k])).collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1)); // stable: first seen first on ties
    v
}

pub fn reference(text: &str) -> Reference {
    let mut r = Reference::default();
    let mut users = HashSet::new();
    let (mut ep_order, mut ep) = (Vec::new(), HashMap::new());
    let (mut er_order, mut er) = (Vec::new(), HashMap::new());
    let mut durs: HashMap<String, Vec<f64>> = HashMap::new();
    let mut slow = Vec::new();
    for line in text.lines() {
        let Ok(Value::Object(e)) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let level = e.get("level").and_then(Value::as_str);
        if matches!(level, Some("ERROR" | "CRITICAL")) {
            let t = e.get("error_type").map_or("Unknown".to_string(), key);
            if !er.contains_key(&t) {
                er_order.push(t.clone());
            }
            *er.entry(t).or_insert(0) += 1;
        }
        // A request line (docs/log-schema.md): the four request fields, or the Python design's
        // `Request completed` message.
        let fields = ["method", "path", "status_code", "duration"];
        let request = fields.iter().all(|f| e.contains_key(*f))
            || e.get("message").and_then(Value::as_str) == Some("Request completed");
        if !request {
            continue;
        }
        r.total += 1;
        let sc = e.get("status_code").map_or(0, |v| v.as_i64().unwrap_or(-1));
        *r.status.entry(sc.to_string()).or_insert(0) += 1;
        if (200..400).contains(&sc) {
            r.successful += 1;
        } else {
            r.failed += 1;
        }
        let p = e.get("path").map_or("unknown".to_string(), key);
        if !ep.contains_key(&p) {
            ep_order.push(p.clone());
        }
        *ep.entry(p.clone()).or_insert(0u64) += 1;
        if let Some(Value::String(u)) = e.get("user_id")
            && !u.is_empty()
        {
            users.insert(u.clone());
        }
        if let Some(d) = e.get("duration").and_then(Value::as_f64) {
            durs.entry(p.clone()).or_default().push(d);
            if d > 5.0 {
                slow.push((p, d));
            }
        }
    }
    r.users = users.len();
    r.endpoints = most_common(&ep_order, &ep).into_iter().take(20).collect();
    r.errors = most_common(&er_order, &er);
    for (k, mut v) in durs {
        let n = v.len();
        let sum: f64 = v.iter().sum();
        v.sort_by(f64::total_cmp);
        let pct = |p: usize| v[(n * p / 100).min(n - 1)];
        r.perf.insert(
            k,
            (
                n as u64,
                sum / n as f64,
                v[0],
                v[n - 1],
                pct(50),
                pct(95),
                pct(99),
            ),
        );
    }
    slow.sort_by(|a, b| b.1.total_cmp(&a.1));
    slow.truncate(20);
    r.slow = slow;
    r
}

/// The Python design's `gen_logs.py` and `log_analyzer.py`, vendored in `tests/python_design/`.
pub fn python_design_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python_design")
}

pub fn opts() -> otelbricks_logkit::Options {
    otelbricks_logkit::Options {
        threads: 2,
        chunk_bytes: 4096,
        ..otelbricks_logkit::Options::default()
    }
}

pub fn analyze(paths: &[&Path]) -> otelbricks_logkit::Report {
    analyze_with(paths, &opts())
}

pub fn analyze_with(paths: &[&Path], o: &otelbricks_logkit::Options) -> otelbricks_logkit::Report {
    let args: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    otelbricks_logkit::analyze(&args, o).expect("analysis")
}
