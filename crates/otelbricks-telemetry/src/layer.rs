//! The `tracing` side of telemetry as one [`Layer`] the application composes into its own
//! subscriber: [`TelemetryLayer`], from [`crate::TelemetryBuilder::build`].
//!
//! Inside it are four layers behind one per-layer filter (the level filter of
//! `RUST_LOG`/[`crate::TelemetryBuilder::filter`], evaluated once per event), some with a
//! per-layer filter of their own; nothing here filters what the application's other layers see:
//! - `tracing-opentelemetry` (spans only: events become log records, not span events);
//! - the JSON line layer ([`crate::json::JsonLayer`]) writing the console and the log files;
//! - the readable console (`TELEMETRY_CONSOLE=pretty`), control characters escaped;
//! - the OTel log bridge (`opentelemetry-appender-tracing`), which never sees the exporters' own
//!   targets (see [`crate::no_feedback_target`]).

use std::any::TypeId;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter};
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

use crate::console::EscapedFields;
use crate::json::JsonLayer;
use crate::pipeline::no_feedback_target;

/// Everything telemetry does with `tracing` spans and events, as one layer for the application's
/// own subscriber.
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
///
/// let (telemetry, _guard) = otelbricks_telemetry::builder("checkout").build()?;
/// tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_filter(tracing::level_filters::LevelFilter::WARN))
///     .with(telemetry)
///     .init();
/// # Ok::<(), otelbricks_telemetry::TelemetryError>(())
/// ```
///
/// Add it with `.with(layer)` (or [`Layer::and_then`]), not inside a `Vec` of layers:
/// `tracing-subscriber` 0.3 does not hand the dispatcher to layers in a `Vec`, and the JSON lines
/// then lose their `trace_id`/`span_id`.
///
/// Its filters are per-layer: `RUST_LOG` decides what this layer records and nothing else; the
/// application's layers see every event their own filters let through.
pub struct TelemetryLayer<S> {
    inner: Box<dyn Layer<S> + Send + Sync>,
}

impl<S> std::fmt::Debug for TelemetryLayer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for TelemetryLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }
    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }
    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }
    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(span, values, ctx);
    }
    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(span, follows, ctx);
    }
    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.inner.on_event(event, ctx);
    }
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }
    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }
    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }
    // Delegated so that `tracing_opentelemetry::get_otel_context` and the OTel span extension
    // methods find the OpenTelemetry layer inside.
    #[doc(hidden)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // SAFETY: forwarded unchanged to the inner layer, whose implementation upholds the
        // contract (the pointer it returns, if any, points to a value of type `id`).
        unsafe { self.inner.downcast_raw(id) }
    }
}

/// Drops the SDK's and the OTLP exporter's per-batch export-failure events (`*.ExportError`,
/// `Export.Failed.*`): the exporters' own wrapper counts every failure and logs them at most once a
/// minute per signal.
#[derive(Clone, Copy)]
pub(crate) struct QuietExportErrors;

impl<S> Filter<S> for QuietExportErrors {
    fn enabled(&self, metadata: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        let name = metadata.name();
        !(metadata.target().starts_with("opentelemetry")
            && (name.ends_with("ExportError") || name.starts_with("Export.Failed")))
    }
}

/// Per-layer filter of the OTel log bridge.
pub(crate) struct NoFeedback;

impl<S> Filter<S> for NoFeedback {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        no_feedback_target(meta.target())
    }
}

/// The parts of the layer stack, shared by the builder and the `testing` capture.
pub(crate) struct Layers {
    pub filter: EnvFilter,
    pub tracer_provider: Option<SdkTracerProvider>,
    pub logger_provider: Option<SdkLoggerProvider>,
    pub json: JsonLayer,
    pub pretty_console: bool,
    pub service_name: String,
}

impl Layers {
    /// The stack as one layer over `S`.
    pub(crate) fn into_layer<S>(self) -> TelemetryLayer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
    {
        // Spans only: events reach OTel as log records (bridge below), not also as span events,
        // which would store every log line twice and cost the app more per event.
        let otel_traces = self.tracer_provider.map(|tp| {
            tracing_opentelemetry::layer()
                .with_tracer(tp.tracer(self.service_name.clone()))
                .with_tracked_inactivity(false)
                .with_threads(false)
                .with_filter(tracing_subscriber::filter::filter_fn(|meta| meta.is_span()))
        });
        let pretty = self.pretty_console.then(|| {
            tracing_subscriber::fmt::layer()
                .compact()
                .fmt_fields(EscapedFields)
                .with_writer(std::io::stdout)
        });
        let otel_logs = self.logger_provider.map(|lp| {
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&lp)
                .with_filter(NoFeedback)
        });
        // One level filter around the four, evaluated once per event and span (nested per-layer
        // filters combine: an inner layer sees only what both its own and this filter enable).
        let ours = FilterExt::<S>::and(self.filter, QuietExportErrors);
        let stack = Layer::and_then(otel_traces, self.json)
            .and_then(pretty)
            .and_then(otel_logs)
            .with_filter(ours);
        TelemetryLayer {
            inner: Box::new(stack),
        }
    }

    /// The stack on a fresh registry (for the `testing` capture).
    #[cfg(feature = "testing")]
    pub(crate) fn into_subscriber(self) -> impl Subscriber + Send + Sync + for<'a> LookupSpan<'a> {
        use tracing_subscriber::layer::SubscriberExt as _;
        Registry::default().with(self.into_layer())
    }
}

/// Layers the application adds to the subscriber [`crate::TelemetryBuilder::install`] sets.
pub(crate) type ExtraLayer = Box<dyn Layer<Registry> + Send + Sync>;
