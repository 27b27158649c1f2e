//! Business and task metrics, named so that the Prometheus exporter prints the Python design's names:
//! a counter `models_generated` becomes `models_generated_total`, a histogram
//! `model_generation_duration` with unit `s` becomes `model_generation_duration_seconds`.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};

/// The meter name of the app's own instruments.
pub const METER_NAME: &str = "image2model";

/// The task name of a model-generation job (`task_name` attribute).
pub const TASK_GENERATE: &str = "generate_model";
/// The task name of a batch (`task_name` attribute).
pub const TASK_BATCH: &str = "process_batch";
/// The queue of model-generation jobs (`queue_name` attribute).
pub const QUEUE_NAME: &str = "model_generation";

/// The `reason`s of `requests_rejected_total`.
pub const REJECT_REASONS: &[&str] = &[
    "rate_limited",
    "job_quota",
    "queue_full",
    "options_too_large",
    "filename_too_long",
    "payload_too_large",
    "uri_too_long",
    "body_timeout",
    "disk_full",
    "connection_limit",
];

/// Buckets of `model_generation_duration_seconds` (the Python design's).
pub const MODEL_GENERATION_BUCKETS: &[f64] =
    &[10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0];
/// Buckets of `batch_processing_duration_seconds`.
pub const BATCH_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Buckets of `task_duration_seconds`.
pub const TASK_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];
/// Buckets of `fal_api_duration_seconds`.
pub const FAL_API_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The `batch_size` label: a small set of ranges, never the raw number.
pub fn batch_size_label(n: usize) -> &'static str {
    match n {
        0 | 1 => "1",
        2..=5 => "2-5",
        6..=10 => "6-10",
        _ => "11+",
    }
}

/// The app's instruments.
#[derive(Clone, Debug)]
pub struct Metrics {
    models_generated: Counter<u64>,
    model_generation_duration: Histogram<f64>,
    batch_processing_duration: Histogram<f64>,
    tasks: Counter<u64>,
    task_duration: Histogram<f64>,
    queue_length: Gauge<u64>,
    fal_api_calls: Counter<u64>,
    fal_api_duration: Histogram<f64>,
    fal_rate_limits: Counter<u64>,
    rejected: Counter<u64>,
}

impl Metrics {
    /// Instruments on the global meter [`METER_NAME`].
    pub fn global() -> Self {
        Self::new(&opentelemetry::global::meter(METER_NAME))
    }

    /// Instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        Metrics {
            models_generated: meter
                .u64_counter("models_generated")
                .with_description("Total 3D models generated")
                .build(),
            model_generation_duration: meter
                .f64_histogram("model_generation_duration")
                .with_unit("s")
                .with_description("Time to generate 3D model")
                .with_boundaries(MODEL_GENERATION_BUCKETS.to_vec())
                .build(),
            batch_processing_duration: meter
                .f64_histogram("batch_processing_duration")
                .with_unit("s")
                .with_description("Time to process entire batch")
                .with_boundaries(BATCH_BUCKETS.to_vec())
                .build(),
            tasks: meter
                .u64_counter("tasks")
                .with_description("Total background tasks")
                .build(),
            task_duration: meter
                .f64_histogram("task_duration")
                .with_unit("s")
                .with_description("Background task execution time")
                .with_boundaries(TASK_BUCKETS.to_vec())
                .build(),
            queue_length: meter
                .u64_gauge("task_queue_length")
                .with_description("Number of tasks in queue")
                .build(),
            fal_api_calls: meter
                .u64_counter("fal_api_calls")
                .with_description("Total FAL.AI API calls")
                .build(),
            fal_api_duration: meter
                .f64_histogram("fal_api_duration")
                .with_unit("s")
                .with_description("FAL.AI API call duration")
                .with_boundaries(FAL_API_BUCKETS.to_vec())
                .build(),
            fal_rate_limits: meter
                .u64_counter("fal_rate_limits")
                .with_description("FAL.AI rate limit hits")
                .build(),
            rejected: meter
                .u64_counter("requests_rejected")
                .with_description("Requests and connections refused by a limit, by reason")
                .build(),
        }
    }

    /// A model finished: `status` is `success` or `failure`.
    pub fn model_finished(&self, status: &'static str, duration_s: f64) {
        self.models_generated
            .add(1, &[KeyValue::new("status", status)]);
        if status == "success" {
            self.model_generation_duration.record(duration_s, &[]);
        }
    }

    /// A batch finished (every job terminal).
    pub fn batch_finished(&self, size: usize, duration_s: f64) {
        self.batch_processing_duration.record(
            duration_s,
            &[KeyValue::new("batch_size", batch_size_label(size))],
        );
    }

    /// A task ended with `status` (`success`, `failure`, `requeued`).
    pub fn task_finished(&self, task: &'static str, status: &'static str, duration_s: f64) {
        self.tasks.add(
            1,
            &[
                KeyValue::new("task_name", task),
                KeyValue::new("status", status),
            ],
        );
        self.task_duration
            .record(duration_s, &[KeyValue::new("task_name", task)]);
    }

    /// The queue now holds `n` jobs.
    pub fn queue_length(&self, n: u64) {
        self.queue_length
            .record(n, &[KeyValue::new("queue_name", QUEUE_NAME)]);
    }

    /// One provider call: `endpoint` is `submit`, `status` or `result`; `status` the HTTP code or
    /// `error` (transport) .
    pub fn fal_call(&self, endpoint: &'static str, status: &str, duration_s: f64) {
        self.fal_api_calls.add(
            1,
            &[
                KeyValue::new("endpoint", endpoint),
                KeyValue::new("status", status.to_owned()),
            ],
        );
        self.fal_api_duration
            .record(duration_s, &[KeyValue::new("endpoint", endpoint)]);
    }

    /// A limit refused a request or a connection: `reason` is one of [`REJECT_REASONS`].
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.add(1, &[KeyValue::new("reason", reason)]);
    }

    /// The provider answered 429.
    pub fn fal_rate_limited(&self) {
        self.fal_rate_limits.add(1, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_fold_into_four_ranges() {
        assert_eq!(batch_size_label(1), "1");
        assert_eq!(batch_size_label(2), "2-5");
        assert_eq!(batch_size_label(5), "2-5");
        assert_eq!(batch_size_label(6), "6-10");
        assert_eq!(batch_size_label(10), "6-10");
        assert_eq!(batch_size_label(11), "11+");
        assert_eq!(batch_size_label(500), "11+");
    }
}
