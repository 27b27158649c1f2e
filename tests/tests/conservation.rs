//! Conservation of requests across signals, and exact accounting of losses, against the real stack.
//!
//! The test sends requests of known outcome itself ([`Traffic`]), so it knows for every status how many
//! requests it got answered. Every signal must then hold exactly that many, per status: the log file (read by
//! `logkit`), the app's admin `/metrics`, Prometheus through the collector, the collector's span metrics,
//! Jaeger's server spans and the request records that reached the Loki pipeline. Excluded paths are in none.
//!
//! With the collector down, nothing is delivered, but nothing is lost uncounted either: what Jaeger and the
//! Loki pipeline hold plus what the app's self-metrics count as dropped equals what the app emitted.

use std::path::Path;
use std::time::{Duration, Instant};

use stack_tests::accounting::{self, Ledger};
use stack_tests::signals::{self, ByStatus, Outcomes, REQUEST_COUNT};
use stack_tests::traffic::{Call, Traffic};
use stack_tests::{App, Sink, Stack, eventually, exposition, query};

const SERVICE: &str = "image2model";

/// Faster batch exports than the SDK defaults (5 s for spans), so a test waits less for delivery.
const FAST_BATCHES: [(&str, &str); 2] = [
    ("OTEL_BSP_SCHEDULE_DELAY", "500"),
    ("OTEL_BLRP_SCHEDULE_DELAY", "500"),
];

fn stack_with_sink(dir: &Path, sink: &Sink) -> Stack {
    let stack = accounting::stack_with_sink(dir, sink).expect("stack comes up");
    eprintln!("stack ready in {:?}", stack.start_times());
    stack
}

/// Requests whose route or path is one of the excluded ones, in every signal that names routes.
fn excluded_everywhere(
    stack: &Stack,
    app: &App,
    sink: &Sink,
    log: &Path,
    window: Duration,
) -> Vec<(&'static str, Result<u64, String>)> {
    let is_excluded = |p: &str| p == "/health" || p == "/ready";
    let admin = exposition::scrape(app.admin_metrics_url()).map(|e| {
        e.sum(REQUEST_COUNT, |s| {
            s.label("http_route").is_some_and(is_excluded)
        }) as u64
    });
    let prom = |expr: &str| {
        query::prom_query(&stack.prometheus_url(), expr)
            .map(|v| v.iter().map(|s| s.value as u64).sum::<u64>())
            .map_err(|e| e.to_string())
    };
    let jaeger =
        query::jaeger_find(&stack.jaeger_url(), SERVICE, None, window, 5000).map(|spans| {
            spans
                .iter()
                .filter(|s| s.attributes.get("url.path").is_some_and(|p| is_excluded(p)))
                .count() as u64
        });
    let file = std::fs::read_to_string(log).map(|text| {
        text.lines()
            .filter(|l| l.contains("\"path\":\"/health\"") || l.contains("\"path\":\"/ready\""))
            .count() as u64
    });
    let loki = sink
        .logs()
        .iter()
        .filter(|l| l.attributes.get("path").is_some_and(|p| is_excluded(p)))
        .count() as u64;
    vec![
        ("app admin /metrics", admin.map_err(|e| e.to_string())),
        (
            "Prometheus via the collector",
            prom(&format!(
                r#"sum({REQUEST_COUNT}{{job="{SERVICE}",http_route=~"/health|/ready"}})"#
            )),
        ),
        (
            "span metrics",
            prom(&format!(
                r#"sum(traces_span_metrics_calls_total{{job="{SERVICE}",http_route=~"/health|/ready"}})"#
            )),
        ),
        ("Jaeger spans", jaeger.map_err(|e| e.to_string())),
        ("log file lines", file.map_err(|e| e.to_string())),
        ("Loki pipeline records", Ok(loki)),
    ]
}

#[test]
fn every_answered_request_is_counted_once_per_status_in_every_signal_and_excluded_paths_in_none() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = Sink::start().expect("sink starts");
    let stack = stack_with_sink(dir.path(), &sink);
    let app_dir = dir.path().join("app");
    // The simulated provider never fails, so the one job the test needs succeeds.
    let mut env = FAST_BATCHES.to_vec();
    env.extend([
        ("IMAGE2MODEL_SIM_FAILURE_RATE", "0"),
        ("IMAGE2MODEL_SIM_ERROR_RATE", "0"),
    ]);
    let app = App::start(&stack, &app_dir, &env).expect("image2model starts");
    let log = app_dir.join("logs").join(format!("{SERVICE}.json"));
    let traffic = Traffic::new(app.base_url(), "conservation").expect("client");

    // A job whose result file is then removed: downloading it is a 500 on a matched route.
    let file_id = traffic.send_json(&Call::Upload, 201).expect("upload")["file_id"]
        .as_str()
        .expect("file_id")
        .to_string();
    let job_id = traffic
        .send_json(&Call::CreateJob(file_id), 202)
        .expect("create job")["job_id"]
        .as_str()
        .expect("job_id")
        .to_string();
    let succeeded = eventually(Duration::from_secs(60), Duration::from_millis(250), || {
        let job = traffic.send_json(&Call::GetJob(job_id.clone()), 200).ok()?;
        (job["status"] == "succeeded").then_some(())
    });
    assert!(
        succeeded.is_some(),
        "job {job_id} did not succeed within 60 s"
    );
    std::fs::remove_file(app_dir.join("data/results").join(format!("{job_id}.glb")))
        .expect("remove the job's result file");

    let mut mix = Call::single_span_mix();
    mix.extend([
        Call::GetJob(job_id.clone()),
        Call::Download(job_id),
        Call::Ready,
    ]);
    traffic.run_for(&mix, 3, 30.0, Duration::from_secs(8));
    let tally = traffic.tally();
    eprintln!("sent: {}", tally.summary());
    assert_eq!(
        tally.transport_errors,
        0,
        "every request was answered: {}",
        tally.summary()
    );
    assert!(
        tally.by_status().contains_key(&500),
        "the mix produced a 5xx: {}",
        tally.summary()
    );
    assert!(tally.excluded() > 0, "the mix hit excluded paths");

    let sent = tally.by_status();
    let n = tally.requests();
    let window = started.elapsed() + Duration::from_secs(120);
    let mut ledger = Ledger::default();
    let balanced = eventually(Duration::from_secs(90), Duration::from_secs(3), || {
        ledger = conservation_ledger(&stack, &app, &sink, &log, &sent, n, window);
        for (signal, found) in excluded_everywhere(&stack, &app, &sink, &log, window) {
            ledger.row(signal, "excluded paths", 0, found);
        }
        ledger.balanced().then_some(())
    });
    eprintln!("{ledger}");
    drop(app);
    drop(stack);
    assert!(
        balanced.is_some(),
        "signals that do not account for every request: {:?}\n{ledger}",
        ledger.unbalanced_signals()
    );
}

fn conservation_ledger(
    stack: &Stack,
    app: &App,
    sink: &Sink,
    log: &Path,
    sent: &ByStatus,
    n: u64,
    window: Duration,
) -> Ledger {
    let prom = stack.prometheus_url();
    let mut l = Ledger::new(&format!("{n} requests answered, per signal and status"));
    l.per_status(
        "logkit summary (log file)",
        sent,
        signals::logkit_by_status(log),
    );
    l.per_status(
        "log file request lines",
        sent,
        signals::file_requests(log)
            .map(|lines| signals::count_by_status(lines.iter().map(|l| l.status))),
    );
    l.per_status(
        "app admin /metrics",
        sent,
        exposition::scrape(app.admin_metrics_url())
            .map(|e| signals::exposition_by_status(&e))
            .map_err(|e| e.to_string()),
    );
    l.per_status(
        "Prometheus via the collector",
        sent,
        signals::prometheus_requests(&prom, SERVICE),
    );
    l.per_status(
        "span metrics (server calls)",
        sent,
        signals::prometheus_by_status(
            &prom,
            &format!(
                r#"sum by (http_response_status_code) (traces_span_metrics_calls_total{{job="{SERVICE}",span_kind="SPAN_KIND_SERVER"}})"#
            ),
        ),
    );
    l.per_status(
        "Jaeger server spans",
        sent,
        signals::jaeger_spans(&stack.jaeger_url(), SERVICE, window, (n as usize) * 2 + 100)
            .map(|s| signals::server_spans_by_status(&s)),
    );
    l.per_status(
        "Loki pipeline request records",
        sent,
        Ok(signals::sink_requests(&sink.logs(), SERVICE)),
    );
    l
}

/// Lines of the app's log file that the OTel log bridge also takes (not from the exporters' own stack).
fn exportable_lines(log: &Path) -> Result<u64, String> {
    signals::file_lines_where(log, |v| {
        v["logger"]
            .as_str()
            .is_some_and(otelbricks_telemetry::no_feedback_target)
    })
}

#[test]
fn with_the_collector_down_for_30s_delivered_plus_counted_drops_equals_emitted_and_metric_totals_recover()
 {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = Sink::start().expect("sink starts");
    let mut stack = stack_with_sink(dir.path(), &sink);
    let app_dir = dir.path().join("app");
    let app = App::start(&stack, &app_dir, &FAST_BATCHES).expect("image2model starts");
    let log = app_dir.join("logs").join(format!("{SERVICE}.json"));
    let traffic = Traffic::new(app.base_url(), "fault").expect("client");
    // One span, one request line and one handler line per request; no background jobs.
    let mix = Call::single_span_mix();
    let window = || started.elapsed() + Duration::from_secs(120);

    traffic.run_for(&mix, 2, 20.0, Duration::from_secs(6));
    // A collector killed with SIGKILL loses what it holds in memory; that loss is the collector's (see
    // docs/guarantees.md). So the load pauses until the collector has passed everything on, then it dies.
    let before = traffic.tally().requests();
    let mut last = String::new();
    let drained = eventually(Duration::from_secs(60), Duration::from_secs(1), || {
        let spans = signals::jaeger_spans(&stack.jaeger_url(), SERVICE, window(), 10_000)
            .map(|s| s.len() as u64)
            .ok()?;
        let metrics = exposition::scrape(app.admin_metrics_url()).ok()?;
        let logs = Outcomes::read(&metrics, "log");
        let received = sink
            .logs()
            .iter()
            .filter(|l| l.service_name == SERVICE)
            .count() as u64;
        last = format!(
            "{spans} of {before} spans in Jaeger; {received} of {} exported log records in the sink",
            logs.exported
        );
        (spans == before && received == logs.exported).then_some(())
    });
    assert!(
        drained.is_some(),
        "the stack did not pass everything on before the kill: {last}"
    );

    stack.kill_collector();
    traffic.run_for(&mix, 2, 20.0, Duration::from_secs(30));
    stack.start_collector().expect("collector restarts");
    traffic.run_for(&mix, 2, 20.0, Duration::from_secs(6));
    let tally = traffic.tally();
    eprintln!("sent: {}", tally.summary());
    assert_eq!(
        tally.transport_errors, 0,
        "no request failed while the collector was down"
    );

    let n = tally.requests();
    let mut ledger = Ledger::default();
    let mut outcomes = (Outcomes::default(), Outcomes::default());
    let balanced = eventually(Duration::from_secs(90), Duration::from_secs(3), || {
        let mut l = Ledger::new(&format!(
            "{n} requests, collector down for 30 s: emitted = delivered + counted as dropped"
        ));
        let metrics = exposition::scrape(app.admin_metrics_url()).map_err(|e| e.to_string());
        let spans = metrics
            .as_ref()
            .map(|e| Outcomes::read(e, "span"))
            .map_err(Clone::clone);
        let logs = metrics
            .as_ref()
            .map(|e| Outcomes::read(e, "log"))
            .map_err(Clone::clone);
        let in_jaeger = signals::jaeger_spans(&stack.jaeger_url(), SERVICE, window(), 10_000)
            .map(|s| s.len() as u64);
        l.row(
            "spans",
            "Jaeger + dropped",
            n,
            in_jaeger
                .clone()
                .and_then(|j| Ok(j + spans.clone()?.dropped())),
        );
        l.row(
            "spans",
            "app: exported + dropped",
            n,
            spans.clone().map(|s| s.exported + s.dropped()),
        );
        let emitted = exportable_lines(&log);
        let received = sink
            .logs()
            .iter()
            .filter(|r| r.service_name == SERVICE)
            .count() as u64;
        let emitted_n = emitted.clone().unwrap_or(0);
        l.row(
            "log records",
            "Loki pipeline + dropped",
            emitted_n,
            logs.clone().map(|o| received + o.dropped()),
        );
        l.row(
            "log records",
            "app: exported + dropped",
            emitted_n,
            logs.clone().map(|o| o.exported + o.dropped()),
        );
        l.row(
            "log file",
            "request lines",
            n,
            signals::file_requests(&log).map(|v| v.len() as u64),
        );
        if let Err(e) = emitted {
            l.row("log file", "exportable lines", 0, Err(e));
        }
        l.row(
            "metrics",
            "Prometheus request total",
            n,
            signals::prometheus_requests(&stack.prometheus_url(), SERVICE)
                .map(|by| by.values().sum()),
        );
        ledger = l;
        if let (Ok(s), Ok(g)) = (spans, logs) {
            outcomes = (s, g);
        }
        ledger.balanced().then_some(())
    });
    eprintln!("{ledger}");
    eprintln!("spans {:?}; log records {:?}", outcomes.0, outcomes.1);
    drop(app);
    drop(stack);
    assert!(
        balanced.is_some(),
        "losses not accounted for exactly in {:?}\n{ledger}",
        ledger.unbalanced_signals()
    );
    assert!(
        outcomes.0.dropped() > 0 && outcomes.1.dropped() > 0,
        "the outage cost spans and log records, and they were counted: spans {:?}, logs {:?}",
        outcomes.0,
        outcomes.1
    );
}
