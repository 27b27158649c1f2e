//! The agent/gateway tier with tail sampling, proven on loopback: one agent (`otel-collector/agent.yaml`)
//! routing by trace id to two gateways (`otel-collector/gateway.yaml`), Jaeger and Prometheus, all real
//! processes. The test sends traces whose ids, spans and kind (error, slow, ordinary) it knows, then reads
//! back from Jaeger, from Prometheus and from the collectors' own metrics:
//! - no trace is split across gateways, and every trace in Jaeger is complete;
//! - every error trace and every slow trace is kept; the share of ordinary traces kept is within a binomial
//!   tolerance of the setting;
//! - the span metrics count every span sent (they are computed before sampling);
//! - with one gateway killed, the agent keeps delivering the other gateway's share, loses only whole traces,
//!   and its own `otelcol_exporter_send_failed_spans` covers every lost span (at batch granularity: a batch
//!   with any span for the dead gateway counts whole); with the dead gateway taken out of its list, all
//!   traffic reaches the survivor.

use std::collections::BTreeSet;
use std::time::Duration;

use stack_tests::exposition::{self, Sample};
use stack_tests::gateway::{
    SPANS_PER_TRACE, SentTrace, Tier, TierOptions, TraceKind, TraceMix, log_tails, mix_kinds,
    post_traces,
};
use stack_tests::{eventually, http, query};

const SERVICE: &str = "gateway-test";
const WAIT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(250);
/// Traces per OTLP request.
const BATCH: usize = 40;

/// Sends `count` traces of [`mix_kinds`] to `url`, [`BATCH`] per request; every request must be accepted.
fn send(url: &str, mix: &mut TraceMix, count: usize) -> Vec<SentTrace> {
    let kinds = mix_kinds(count);
    let client = http::client().expect("http client");
    let mut sent = Vec::with_capacity(count);
    for chunk in kinds.chunks(BATCH) {
        let (request, traces) = mix.request(chunk);
        post_traces(&client, url, &request).unwrap_or_else(|e| panic!("sending traces: {e}"));
        sent.extend(traces);
    }
    sent
}

/// The counter `metric` at `url`, summed over the samples `keep` selects (NaN when the scrape fails).
fn counter(url: &str, metric: &str, keep: impl Fn(&Sample) -> bool) -> f64 {
    exposition::scrape(url).map_or(f64::NAN, |e| e.counter(metric, keep))
}

fn load_balancing(sample: &Sample) -> bool {
    sample.has("exporter", "load_balancing")
}

fn spans(traces: &[SentTrace]) -> f64 {
    (traces.len() * SPANS_PER_TRACE) as f64
}

/// Half-width of the interval holding a Binomial(n, p) count with probability ~1 - 7e-6 (z = 4.5, normal
/// approximation; n p (1 - p) is in the hundreds here).
fn binomial_tolerance(n: usize, p: f64) -> f64 {
    4.5 * (n as f64 * p * (1.0 - p)).sqrt()
}

/// What Jaeger holds of `trace`: `None` when it has no span of it, else whether the spans are exactly the
/// ones sent.
fn in_jaeger(tier: &Tier, trace: &SentTrace) -> Option<bool> {
    let got = query::jaeger_trace(&tier.jaeger_url(), &trace.trace_id).expect("jaeger query");
    if got.is_empty() {
        return None;
    }
    let ids: BTreeSet<&str> = got.iter().map(|s| s.span_id.as_str()).collect();
    let want: BTreeSet<&str> = trace.span_ids.iter().map(String::as_str).collect();
    Some(ids == want && got.len() == want.len())
}

/// What Jaeger holds of the traces sent.
struct JaegerView {
    /// Traces with every span in Jaeger.
    kept: usize,
    /// Of those, the ordinary ones.
    normal_kept: usize,
    /// Trace ids with some spans in Jaeger, not all.
    incomplete: Vec<String>,
    /// Error and slow trace ids Jaeger does not have.
    missing: Vec<String>,
}

impl JaegerView {
    fn of(tier: &Tier, sent: &[SentTrace]) -> JaegerView {
        let mut v = JaegerView {
            kept: 0,
            normal_kept: 0,
            incomplete: Vec::new(),
            missing: Vec::new(),
        };
        for trace in sent {
            match (in_jaeger(tier, trace), trace.kind) {
                (Some(false), _) => v.incomplete.push(trace.trace_id.clone()),
                (None, TraceKind::Error | TraceKind::Slow) => {
                    v.missing.push(trace.trace_id.clone())
                }
                (None, TraceKind::Normal) => {}
                (Some(true), kind) => {
                    v.kept += 1;
                    v.normal_kept += usize::from(kind == TraceKind::Normal);
                }
            }
        }
        v
    }
}

fn fail(tier: &Tier, what: &str) -> ! {
    panic!("{what}\n{}", log_tails(&tier.logs(), 15))
}

#[test]
fn gateway_tier_keeps_whole_traces_every_error_and_slow_one_and_counts_what_a_dead_gateway_loses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = TierOptions::new(dir.path());
    let share = opts.sample_percent / 100.0;
    let slow = Duration::from_millis(opts.slow_trace_ms + 300);
    let mut tier = Tier::up(opts).unwrap_or_else(|e| panic!("tier up: {e}"));
    let mut mix = TraceMix::new(SERVICE, slow);
    let agent_url = tier.agent().otlp_traces_url();
    let agent_metrics = tier.agent().self_metrics_url();
    let gateway_metrics: Vec<String> = (0..2).map(|i| tier.gateway(i).self_metrics_url()).collect();
    let sum_gateways = |metric: &str, keep: &dyn Fn(&Sample) -> bool| -> f64 {
        gateway_metrics
            .iter()
            .map(|u| counter(u, metric, keep))
            .sum()
    };

    // Phase 1: both gateways up.
    let first = send(&agent_url, &mut mix, 1200);
    let decided = eventually(WAIT, POLL, || {
        let n = sum_gateways(
            "otelcol_processor_tail_sampling_global_count_traces_sampled",
            &|_| true,
        );
        (n >= first.len() as f64).then_some(n)
    })
    .unwrap_or_else(|| fail(&tier, "the gateways did not decide on every trace"));
    assert_eq!(decided, first.len() as f64, "one decision per trace");
    // A trace split across the gateways would be a new trace on both.
    let new_traces = sum_gateways(
        "otelcol_processor_tail_sampling_new_trace_id_received",
        &|_| true,
    );
    assert_eq!(
        new_traces,
        first.len() as f64,
        "some trace reached both gateways"
    );
    for (i, url) in gateway_metrics.iter().enumerate() {
        let got = counter(url, "otelcol_receiver_accepted_spans", |_| true);
        assert!(
            got > 0.0,
            "gateway {i} received no span: the agent routed everything to one"
        );
    }
    assert_eq!(
        sum_gateways("otelcol_receiver_accepted_spans", &|_| true),
        spans(&first),
        "the gateways received every span the agent accepted"
    );

    // Jaeger holds exactly the kept traces once their spans have all arrived.
    let kept = sum_gateways(
        "otelcol_processor_tail_sampling_global_count_traces_sampled",
        &|s| s.has("sampled", "true"),
    );
    let jaeger_metrics = tier.jaeger_metrics_url();
    eventually(WAIT, POLL, || {
        (counter(&jaeger_metrics, "otelcol_receiver_accepted_spans", |_| true)
            >= kept * SPANS_PER_TRACE as f64)
            .then_some(())
    })
    .unwrap_or_else(|| fail(&tier, "Jaeger did not receive the kept traces"));
    // Jaeger writes what it accepted in batches: poll until its view settles on the kept traces.
    let view = || JaegerView::of(&tier, &first);
    let settled = eventually(WAIT, Duration::from_secs(1), || {
        let v = view();
        (v.kept == kept as usize && v.incomplete.is_empty() && v.missing.is_empty()).then_some(v)
    });
    let JaegerView {
        kept: kept_in_jaeger,
        normal_kept,
        ..
    } = settled.unwrap_or_else(|| {
        let v = view();
        fail(
            &tier,
            &format!(
                "Jaeger holds {} traces, {kept} were kept; incomplete: {:?}; error or slow traces \
                 missing: {:?}",
                v.kept, v.incomplete, v.missing
            ),
        )
    });
    let normal = first.iter().filter(|t| t.kind == TraceKind::Normal).count();
    let expected = normal as f64 * share;
    let tolerance = binomial_tolerance(normal, share);
    eprintln!(
        "kept {kept_in_jaeger} of {} traces: every error and slow one, {normal_kept} of {normal} ordinary \
         (want {expected} ± {tolerance:.1})",
        first.len()
    );
    assert!(
        (normal_kept as f64 - expected).abs() <= tolerance,
        "{normal_kept} of {normal} ordinary traces kept; want {expected} ± {tolerance:.1} ({}%)",
        share * 100.0
    );

    // Span metrics: computed before sampling, so they count every span sent, errors included.
    let calls = |filter: &str| {
        query::prom_query(
            &tier.prometheus_url(),
            &format!("sum(traces_span_metrics_calls_total{{{filter}}})"),
        )
        .ok()
        .and_then(|s| s.first().map(|s| s.value))
        .unwrap_or(0.0)
    };
    let errors = first.iter().filter(|t| t.kind == TraceKind::Error).count();
    eventually(WAIT, POLL, || (calls("") >= spans(&first)).then_some(()))
        .unwrap_or_else(|| fail(&tier, "span metrics never counted every span"));
    assert_eq!(
        calls(""),
        spans(&first),
        "span metrics count every span once"
    );
    // Two spans (root and query) of each error trace have status ERROR.
    assert_eq!(
        calls("status_code=\"STATUS_CODE_ERROR\""),
        (errors * 2) as f64,
        "span metrics count every error span"
    );

    // Phase 2: gateway 0 dies; the agent keeps its static list of both.
    let sent_before = counter(
        &agent_metrics,
        "otelcol_exporter_sent_spans",
        load_balancing,
    );
    let failed_before = counter(
        &agent_metrics,
        "otelcol_exporter_send_failed_spans",
        load_balancing,
    );
    let survivor_before = counter(
        &gateway_metrics[1],
        "otelcol_receiver_accepted_spans",
        |_| true,
    );
    tier.kill_gateway(0);
    let second = send(&agent_url, &mut mix, 400);
    let (sent, failed) = eventually(WAIT, POLL, || {
        let sent = counter(
            &agent_metrics,
            "otelcol_exporter_sent_spans",
            load_balancing,
        ) - sent_before;
        let failed = counter(
            &agent_metrics,
            "otelcol_exporter_send_failed_spans",
            load_balancing,
        ) - failed_before;
        (sent + failed >= spans(&second)).then_some((sent, failed))
    })
    .unwrap_or_else(|| {
        fail(
            &tier,
            "the agent did not account for every span sent after the kill",
        )
    });
    let survivor = counter(
        &gateway_metrics[1],
        "otelcol_receiver_accepted_spans",
        |_| true,
    ) - survivor_before;
    // The load-balancing exporter fails a whole agent batch when any part of it fails, so its counter holds
    // every lost span plus the survivor's share of those batches: an upper bound that misses nothing.
    let lost = spans(&second) - survivor;
    let failed_batches = counter(
        &agent_metrics,
        "otelcol_loadbalancer_backend_outcome",
        |s| s.has("success", "false"),
    );
    eprintln!(
        "after the kill: {} spans sent, {survivor} reached the survivor, {lost} lost; agent counted \
         {failed} failed ({failed_batches} failed backend exports) and {sent} sent",
        spans(&second)
    );
    assert_eq!(
        sent + failed,
        spans(&second),
        "every span is counted as sent or failed"
    );
    assert!(lost > 0.0, "no span hashed to the dead gateway");
    assert!(survivor > 0.0, "the surviving gateway received nothing");
    assert_eq!(
        lost % SPANS_PER_TRACE as f64,
        0.0,
        "only whole traces are lost"
    );
    assert!(
        failed >= lost,
        "the agent counted {failed} failed spans, fewer than the {lost} lost"
    );
    assert!(
        sent <= survivor,
        "the agent counted {sent} spans sent, more than the survivor received ({survivor})"
    );
    assert!(
        failed_batches > 0.0,
        "no failed export to the dead gateway counted"
    );

    // Phase 3: the dead gateway leaves the list; everything reaches the survivor.
    tier.start_agent(&[1])
        .unwrap_or_else(|e| panic!("agent restart: {e}"));
    let third = send(&agent_url, &mut mix, 200);
    eventually(WAIT, POLL, || {
        (counter(
            &agent_metrics,
            "otelcol_exporter_sent_spans",
            load_balancing,
        ) >= spans(&third))
        .then_some(())
    })
    .unwrap_or_else(|| fail(&tier, "the agent did not send everything to the survivor"));
    assert_eq!(
        counter(
            &agent_metrics,
            "otelcol_exporter_send_failed_spans",
            load_balancing
        ),
        0.0,
        "nothing failed once the dead gateway left the list"
    );
    let must_keep: Vec<&SentTrace> = third
        .iter()
        .filter(|t| t.kind != TraceKind::Normal)
        .collect();
    eventually(WAIT, POLL, || {
        must_keep
            .iter()
            .all(|t| in_jaeger(&tier, t) == Some(true))
            .then_some(())
    })
    .unwrap_or_else(|| {
        fail(
            &tier,
            "error and slow traces sent after the failover are not all in Jaeger",
        )
    });
}

#[test]
fn binomial_tolerance_is_four_and_a_half_standard_deviations() {
    // 900 trials at 25 %: sd = sqrt(900 * 0.25 * 0.75) = 12.99.
    assert!((binomial_tolerance(900, 0.25) - 58.46).abs() < 0.01);
    assert_eq!(binomial_tolerance(10, 1.0), 0.0);
}
