//! How many spans per second an app can export through the collector to Jaeger without a drop.
//!
//! Brings the loopback stack up, installs `telemetry` (our public API, OTLP/gRPC to the collector, default
//! batch settings), then emits spans at rising fixed rates, 5 s per step. After each step it reads the app's
//! self-metrics (spans dropped by the processor, spans the exporter failed) and Jaeger's own count of spans
//! received, and prints a table. The figure is the highest rate with no loss anywhere.
//!
//! ```text
//! cargo run --release -p stack-tests --example span_throughput [-- RATE...]
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use otelbricks_telemetry::{ConsoleFormat, OtlpProtocol};
use stack_tests::exposition;
use stack_tests::{Binaries, Stack, StackOptions, eventually};

fn main() -> Result<()> {
    let rates: Vec<u64> = {
        let args: Vec<u64> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if args.is_empty() {
            vec![2_000, 5_000, 10_000, 20_000, 40_000, 80_000]
        } else {
            args
        }
    };
    let dir = tempfile::tempdir()?;
    let mut opts = StackOptions::new(dir.path());
    opts.interval = Some(Duration::from_secs(2));
    // A person runs this: build the stack binaries if needed (cached), as `stack up` does.
    let stack = Stack::up_with(Binaries::build()?, opts).context("stack up")?;
    let admin: std::net::SocketAddr = stack.app_admin_addr().parse()?;
    let guard = otelbricks_telemetry::builder("span-throughput")
        .otlp_endpoint(stack.otlp_grpc_endpoint())
        .otlp_protocol(OtlpProtocol::Grpc)
        .console(ConsoleFormat::Off)
        .without_log_files()
        .admin_addr(admin)
        .install()
        .context("telemetry install")?;
    let admin_url = format!("http://{admin}/metrics");
    let jaeger_metrics = format!("http://127.0.0.1:{}/metrics", stack.ports().jaeger_metrics);

    println!(
        "| target spans/s | achieved | dropped (queue full) | export failed | received by Jaeger | lost |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut emitted_total = 0u64;
    for rate in rates {
        let before = counts(&admin_url, &jaeger_metrics)?;
        let step = Duration::from_secs(5);
        let start = Instant::now();
        let mut emitted = 0u64;
        // Pace in 1 ms ticks: emit what the rate allows so far, then sleep to the next tick.
        while start.elapsed() < step {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while emitted < due {
                let span = tracing::info_span!("work", otel.kind = "internal", step.rate = rate);
                span.in_scope(|| {});
                emitted += 1;
            }
            // Load pacing (the rate is what is measured), not a wait.
            std::thread::sleep(Duration::from_millis(1));
        }
        let achieved = emitted as f64 / start.elapsed().as_secs_f64();
        emitted_total += emitted;
        // Read the counters once the batch processor and the collector have drained: when every span emitted
        // is accounted for (received by Jaeger, dropped or failed), or after 30 s (then some went uncounted).
        let drained = eventually(Duration::from_secs(30), Duration::from_millis(250), || {
            let now = counts(&admin_url, &jaeger_metrics).ok()?;
            let accounted = (now.jaeger - before.jaeger)
                + (now.dropped - before.dropped)
                + (now.failed - before.failed);
            (accounted >= emitted as f64).then_some(now)
        });
        let after = match drained {
            Some(after) => after,
            None => counts(&admin_url, &jaeger_metrics)?,
        };
        let dropped = after.dropped - before.dropped;
        let failed = after.failed - before.failed;
        let received = after.jaeger - before.jaeger;
        let lost = emitted as f64 - received;
        println!(
            "| {rate} | {achieved:.0} | {dropped:.0} | {failed:.0} | {received:.0} | {lost:.0} |"
        );
    }
    eprintln!("{emitted_total} spans emitted in all");
    drop(guard);
    Ok(())
}

struct Counts {
    dropped: f64,
    failed: f64,
    jaeger: f64,
}

fn counts(admin_url: &str, jaeger_metrics: &str) -> Result<Counts> {
    let app = exposition::scrape(admin_url)?;
    let jaeger = exposition::scrape(jaeger_metrics)?;
    Ok(Counts {
        dropped: app.counter("otel_sdk_processor_span_processed", |s| {
            s.has("error_type", "queue_full")
        }),
        failed: app.counter("otel_sdk_exporter_span_exported", exposition::failed),
        jaeger: jaeger.counter("otelcol_receiver_accepted_spans", |_| true),
    })
}
