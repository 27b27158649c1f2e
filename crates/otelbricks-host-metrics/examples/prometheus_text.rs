//! Host and process metrics, printed once in the Prometheus text format a `/metrics` endpoint serves:
//! `cargo run -p otelbricks-host-metrics --example prometheus_text`.

use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder as _, TextEncoder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = prometheus::Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()?;
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let handle = otelbricks_host_metrics::HostMetrics::builder()
        .with_interval(Duration::from_millis(500))
        .build()
        .start(&provider.meter("host-metrics"))?;
    std::thread::sleep(Duration::from_secs(1)); // rates and utilisations need two samples

    let mut text = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut text)?;
    print!("{}", String::from_utf8_lossy(&text));
    handle.shutdown()?;
    Ok(())
}
