//! How many spans per second one tail-sampling gateway (`otel-collector/gateway.yaml`) sustains here.
//!
//! Starts one gateway (no agent) with Jaeger and Prometheus on loopback, then sends it, from two threads,
//! OTLP/HTTP requests of 100 traces (300 spans: one error trace and one slow trace in eight, `stack_tests::gateway::MIX`) at
//! rising fixed rates, 10 s per step. After each step it waits until the gateway has decided on every trace
//! it accepted, then prints what the gateway accepted and refused, how many traces it decided or dropped
//! before their decision, the CPU time the gateway process used, the spans per CPU-second and the gateway's
//! resident memory at the end of the sending (when it holds the most undecided traces). A rate is
//! sustained when the sender kept up, nothing was refused and no trace was dropped before its decision.
//!
//! ```text
//! cargo run --release -p stack-tests --example gateway_throughput [-- SPANS_PER_S...]
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use stack_tests::gateway::{SPANS_PER_TRACE, Tier, TierOptions, TraceMix, mix_kinds, post_traces};
use stack_tests::process::rss_bytes;
use stack_tests::{eventually, exposition, http};

const TRACES_PER_REQUEST: usize = 100;
const STEP: Duration = Duration::from_secs(10);
const SENDERS: usize = 2;

fn main() -> Result<()> {
    let mut rates = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse::<u64>()
                .with_context(|| format!("{a:?} is not a rate in spans/s"))
        })
        .collect::<Result<Vec<u64>>>()?;
    if rates.is_empty() {
        rates = vec![5_000, 10_000, 20_000, 40_000, 80_000];
    }
    let dir = tempfile::tempdir()?;
    let mut opts = TierOptions::new(dir.path());
    opts.gateways = 1;
    opts.agent = false;
    opts.sample_percent = 10.0;
    let slow = Duration::from_millis(opts.slow_trace_ms + 300);
    let tier = Tier::up(opts).context("tier up")?;
    let url = tier.gateway(0).otlp_traces_url();
    let metrics = tier.gateway(0).self_metrics_url();
    let pid = tier.gateway_pid(0);
    let client = http::client()?;
    let kinds = mix_kinds(TRACES_PER_REQUEST);
    let spans_per_request = (TRACES_PER_REQUEST * SPANS_PER_TRACE) as u64;

    println!(
        "| target spans/s | sent spans/s | accepted | refused (spans) | failed requests | traces decided | dropped before decision | gateway CPU s | spans per CPU-s | gateway RSS MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for rate in rates {
        let before = Counts::read(&metrics, pid)?;
        let start = Instant::now();
        // SENDERS threads, each pacing its share of the rate in 1 ms ticks.
        let (sent, failed_requests) = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..SENDERS)
                .map(|_| {
                    let (url, kinds, client) = (&url, &kinds, &client);
                    scope.spawn(move || {
                        let mut mix = TraceMix::new("gateway-throughput", slow);
                        let share = rate as f64 / SENDERS as f64;
                        let (mut sent, mut failed) = (0u64, 0u64);
                        while start.elapsed() < STEP {
                            let due = (start.elapsed().as_secs_f64() * share) as u64;
                            if sent + spans_per_request <= due {
                                let (request, _) = mix.request(kinds);
                                if post_traces(client, url, &request).is_err() {
                                    failed += 1;
                                }
                                sent += spans_per_request;
                            } else {
                                // Load pacing: the rate is the behaviour measured.
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                        (sent, failed)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or((0, 0)))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        });
        let peak_rss = rss_bytes(pid).unwrap_or(0);
        let achieved = sent as f64 / start.elapsed().as_secs_f64();
        let traces = (sent / SPANS_PER_TRACE as u64) as f64;
        // Every accepted trace gets a decision after decision_wait; wait for them (or give up after 60 s).
        eventually(Duration::from_secs(60), Duration::from_millis(250), || {
            let now = Counts::read(&metrics, pid).ok()?;
            (now.decided + now.dropped_early - before.decided - before.dropped_early
                >= (now.accepted - before.accepted) / SPANS_PER_TRACE as f64)
                .then_some(())
        });
        let after = Counts::read(&metrics, pid)?;
        let cpu = after.cpu_seconds - before.cpu_seconds;
        let accepted = after.accepted - before.accepted;
        println!(
            "| {rate} | {achieved:.0} | {accepted:.0} | {:.0} | {failed_requests} | {:.0} of {traces:.0} | {:.0} | {cpu:.1} | {:.0} | {:.0} |",
            after.refused - before.refused,
            after.decided - before.decided,
            after.dropped_early - before.dropped_early,
            accepted / cpu.max(0.01),
            peak_rss as f64 / (1024.0 * 1024.0),
        );
    }
    Ok(())
}

struct Counts {
    accepted: f64,
    refused: f64,
    decided: f64,
    dropped_early: f64,
    cpu_seconds: f64,
}

impl Counts {
    fn read(metrics: &str, pid: u32) -> Result<Counts> {
        let e = exposition::scrape(metrics)?;
        let all = |_: &exposition::Sample| true;
        Ok(Counts {
            accepted: e.counter("otelcol_receiver_accepted_spans", all),
            refused: e.counter("otelcol_receiver_refused_spans", all),
            decided: e.counter(
                "otelcol_processor_tail_sampling_global_count_traces_sampled",
                all,
            ),
            dropped_early: e.counter(
                "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
                all,
            ),
            cpu_seconds: cpu_seconds(pid).context("reading the gateway's CPU time")?,
        })
    }
}

/// User + system CPU time of a process, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks)
}
