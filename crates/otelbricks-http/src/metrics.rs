//! The semantic-convention HTTP instruments.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundHistogram, BoundUpDownCounter, Histogram, Meter, UpDownCounter};

/// Bucket boundaries in seconds for request durations: the semantic-convention advice (and the seed's
/// buckets). Set on the instruments themselves, so they hold with any `MeterProvider`.
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

/// What decides the attributes of a finished request besides its route.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Outcome {
    pub method: &'static str,
    pub status: u16,
    pub scheme: &'static str,
    pub panic: bool,
}

/// The three histograms bound to one attribute set: recording on them skips the SDK's per-call
/// attribute sort and hash lookup.
pub(crate) struct BoundRecorders {
    pub duration: BoundHistogram<f64>,
    pub request_size: BoundHistogram<u64>,
    pub response_size: BoundHistogram<u64>,
}

/// A route's shared name (one allocation per route, not per request) and its bound recorders.
pub(crate) struct RouteEntry {
    pub route: Arc<str>,
    outcomes: RwLock<Vec<(Outcome, Arc<BoundRecorders>)>>,
}

#[derive(Default)]
struct BoundCache {
    routes: RwLock<HashMap<Box<str>, Arc<RouteEntry>>>,
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
pub(crate) fn outcome_attributes(route: &Arc<str>, o: Outcome) -> Vec<KeyValue> {
    let mut attrs = vec![
        KeyValue::new("http.request.method", o.method),
        KeyValue::new(
            "http.route",
            opentelemetry::StringValue::from(route.clone()),
        ),
        KeyValue::new("http.response.status_code", i64::from(o.status)),
        KeyValue::new("url.scheme", o.scheme),
    ];
    if o.panic {
        attrs.push(KeyValue::new("error.type", "panic"));
    } else if o.status >= 500 {
        attrs.push(KeyValue::new("error.type", o.status.to_string()));
    }
    attrs
}

impl ServerMetrics {
    /// The entry of `route`, made on first sight (routes are the app's templates plus the one
    /// unmatched value, so the map is bounded by the router).
    pub(crate) fn route(&self, route: &str) -> Arc<RouteEntry> {
        if let Ok(map) = self.bound.routes.read()
            && let Some(e) = map.get(route)
        {
            return e.clone();
        }
        let entry = Arc::new(RouteEntry {
            route: Arc::from(route),
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
        let attrs = outcome_attributes(&route.route, o);
        let r = Arc::new(BoundRecorders {
            duration: self.duration.bind(&attrs),
            request_size: self.request_size.bind(&attrs),
            response_size: self.response_size.bind(&attrs),
        });
        v.push((o, r.clone()));
        self.bound.sets.fetch_add(1, Ordering::Relaxed);
        Some(r)
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
        }
    }
}
