//! The semantic-convention HTTP instruments, bound per attribute set.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundHistogram, BoundUpDownCounter, Histogram, Meter, UpDownCounter};

/// Bucket boundaries in seconds for request durations: the semantic-convention advice (and the Python
/// design's buckets). Set on the instruments themselves, so they hold with any `MeterProvider`.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Body size buckets in bytes: 0 B to 64 MiB by powers of four.
const SIZE_BUCKETS: &[f64] = &[
    0.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];

#[derive(Clone, Debug)]
pub(crate) struct ServerMetrics {
    pub duration: Histogram<f64>,
    pub active: UpDownCounter<i64>,
    pub request_size: Histogram<u64>,
    pub response_size: Histogram<u64>,
    bound: Arc<BoundCache>,
}

/// Most attribute sets a layer keeps bound instruments for; past it, records take the SDK's
/// per-call attribute lookup (same series, just slower).
const MAX_BOUND_SETS: usize = 1024;

/// `error.type` of a finished request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum ErrorType {
    /// Not a failure.
    None,
    /// A failure by status: `error.type` is the status code.
    Status,
    /// A panic caught by `CatchPanicLayer`.
    Panic,
    /// The inner service returned an error: its type name.
    Error(&'static str),
}

/// What decides the attributes of a finished request besides its route.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Outcome {
    pub method: &'static str,
    /// `None` when the inner service returned an error (no response).
    pub status: Option<u16>,
    pub scheme: &'static str,
    pub version: &'static str,
    pub error: ErrorType,
}

/// The three histograms bound to one attribute set: recording on them skips the SDK's per-call
/// attribute sort and hash lookup.
pub(crate) struct BoundRecorders {
    pub duration: BoundHistogram<f64>,
    pub request_size: BoundHistogram<u64>,
    pub response_size: BoundHistogram<u64>,
}

/// A route's shared name (one allocation per route, not per request; `None` for requests that
/// matched no route) and its bound recorders.
pub(crate) struct RouteEntry {
    pub route: Option<Arc<str>>,
    outcomes: RwLock<Vec<(Outcome, Arc<BoundRecorders>)>>,
}

#[derive(Default)]
struct BoundCache {
    routes: RwLock<HashMap<Box<str>, Arc<RouteEntry>>>,
    unmatched: OnceLock<Arc<RouteEntry>>,
    /// `http.server.active_requests` per (method, scheme).
    active: [[OnceLock<BoundUpDownCounter<i64>>; 2]; METHODS.len()],
    sets: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for BoundCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundCache").finish_non_exhaustive()
    }
}

const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "_OTHER",
];

/// The attribute set of a finished request, as recorded on the histograms.
pub(crate) fn outcome_attributes(route: Option<&Arc<str>>, o: Outcome) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(7);
    attrs.push(KeyValue::new("http.request.method", o.method));
    if let Some(route) = route {
        attrs.push(KeyValue::new(
            "http.route",
            opentelemetry::StringValue::from(route.clone()),
        ));
    }
    if let Some(status) = o.status {
        attrs.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    attrs.push(KeyValue::new("url.scheme", o.scheme));
    attrs.push(KeyValue::new("network.protocol.version", o.version));
    match o.error {
        ErrorType::None => {}
        ErrorType::Panic => attrs.push(KeyValue::new("error.type", "panic")),
        ErrorType::Error(name) => attrs.push(KeyValue::new("error.type", name)),
        ErrorType::Status => {
            if let Some(status) = o.status {
                attrs.push(KeyValue::new("error.type", status.to_string()));
            }
        }
    }
    attrs
}

impl ServerMetrics {
    /// The entry of `route`, made on first sight (routes are the app's templates plus the one
    /// unmatched entry, so the map is bounded by the router).
    pub(crate) fn route(&self, route: Option<&str>) -> Arc<RouteEntry> {
        let Some(route) = route else {
            return self
                .bound
                .unmatched
                .get_or_init(|| {
                    Arc::new(RouteEntry {
                        route: None,
                        outcomes: RwLock::new(Vec::new()),
                    })
                })
                .clone();
        };
        if let Ok(map) = self.bound.routes.read()
            && let Some(e) = map.get(route)
        {
            return e.clone();
        }
        let entry = Arc::new(RouteEntry {
            route: Some(Arc::from(route)),
            outcomes: RwLock::new(Vec::new()),
        });
        match self.bound.routes.write() {
            Ok(mut map) => map.entry(route.into()).or_insert(entry).clone(),
            Err(_) => entry,
        }
    }

    /// Bound recorders for `route` × `outcome`, or `None` past [`MAX_BOUND_SETS`].
    pub(crate) fn recorders(&self, route: &RouteEntry, o: Outcome) -> Option<Arc<BoundRecorders>> {
        if let Ok(v) = route.outcomes.read()
            && let Some((_, r)) = v.iter().find(|(k, _)| *k == o)
        {
            return Some(r.clone());
        }
        use std::sync::atomic::Ordering;
        if self.bound.sets.load(Ordering::Relaxed) >= MAX_BOUND_SETS {
            return None;
        }
        let mut v = route.outcomes.write().ok()?;
        if let Some((_, r)) = v.iter().find(|(k, _)| *k == o) {
            return Some(r.clone());
        }
        let attrs = outcome_attributes(route.route.as_ref(), o);
        let r = Arc::new(BoundRecorders {
            duration: self.duration.bind(&attrs),
            request_size: self.request_size.bind(&attrs),
            response_size: self.response_size.bind(&attrs),
        });
        v.push((o, r.clone()));
        self.bound.sets.fetch_add(1, Ordering::Relaxed);
        Some(r)
    }

    /// Records one finished request.
    pub(crate) fn record(
        &self,
        route: &RouteEntry,
        o: Outcome,
        duration: f64,
        request_size: Option<u64>,
        response_size: Option<u64>,
    ) {
        if let Some(r) = self.recorders(route, o) {
            r.duration.record(duration);
            if let Some(n) = request_size {
                r.request_size.record(n);
            }
            if let Some(n) = response_size {
                r.response_size.record(n);
            }
        } else {
            let attrs = outcome_attributes(route.route.as_ref(), o);
            self.duration.record(duration, &attrs);
            if let Some(n) = request_size {
                self.request_size.record(n, &attrs);
            }
            if let Some(n) = response_size {
                self.response_size.record(n, &attrs);
            }
        }
    }

    /// `http.server.active_requests` bound to (method, scheme).
    pub(crate) fn active(
        &self,
        method: &'static str,
        scheme: &'static str,
    ) -> &BoundUpDownCounter<i64> {
        let m = METHODS
            .iter()
            .position(|x| *x == method)
            .unwrap_or(METHODS.len() - 1);
        let s = usize::from(scheme == "https");
        self.bound.active[m][s].get_or_init(|| {
            self.active.bind(&[
                KeyValue::new("http.request.method", METHODS[m]),
                KeyValue::new("url.scheme", scheme),
            ])
        })
    }
}

impl ServerMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        ServerMetrics {
            duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP server requests.")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            active: meter
                .i64_up_down_counter("http.server.active_requests")
                .with_unit("{request}")
                .with_description("Number of active HTTP server requests.")
                .build(),
            request_size: meter
                .u64_histogram("http.server.request.body.size")
                .with_unit("By")
                .with_description("Size of HTTP server request bodies.")
                .with_boundaries(SIZE_BUCKETS.to_vec())
                .build(),
            response_size: meter
                .u64_histogram("http.server.response.body.size")
                .with_unit("By")
                .with_description("Size of HTTP server response bodies.")
                .with_boundaries(SIZE_BUCKETS.to_vec())
                .build(),
            bound: Arc::default(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct ClientMetrics {
    pub duration: Histogram<f64>,
    pub active: UpDownCounter<i64>,
}

impl ClientMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        ClientMetrics {
            duration: meter
                .f64_histogram("http.client.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP client requests.")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            active: meter
                .i64_up_down_counter("http.client.active_requests")
                .with_unit("{request}")
                .with_description("Number of active HTTP client requests.")
                .build(),
        }
    }
}
