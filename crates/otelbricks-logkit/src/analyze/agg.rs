//! Aggregation: the per-day aggregate (requests, errors, endpoints, users, slow requests) and
//! how aggregates of several workers merge.

use super::percentile::Dist;
use super::sum::OrderFreeSum;
use super::{SLOW_REQUESTS, TIMELINE_REQUEST_IDS};
use crate::keys::{StrIndex, StrSet};
use rustc_hash::FxHashMap as HashMap;

/// A count with the position of the first occurrence (for stable tie-breaking).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counted {
    pub count: u64,
    pub first: u64,
}

impl Counted {
    pub(super) fn new(first: u64) -> Self {
        Counted { count: 0, first }
    }
    pub(super) fn merge(&mut self, o: &Counted) {
        self.count += o.count;
        self.first = self.first.min(o.first);
    }
}

pub(super) fn bump<
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized + ToOwned<Owned = K>,
>(
    m: &mut HashMap<K, Counted>,
    k: &Q,
    seq: u64,
) {
    if let Some(c) = m.get_mut(k) {
        c.count += 1;
    } else {
        m.insert(
            k.to_owned(),
            Counted {
                count: 1,
                first: seq,
            },
        );
    }
}

fn merge_counts<K: std::hash::Hash + Eq>(
    into: &mut HashMap<K, Counted>,
    from: HashMap<K, Counted>,
) {
    for (k, c) in from {
        into.entry(k).or_insert(Counted::new(c.first)).merge(&c);
    }
}

#[derive(Clone)]
pub(crate) struct Perf {
    pub count: u64,
    pub sum: OrderFreeSum,
    pub min: f64,
    pub max: f64,
    pub first: u64,
    pub dist: Dist,
}

impl Perf {
    pub(super) fn merge(&mut self, o: Perf, exact_limit: usize) {
        self.count += o.count;
        self.sum.merge(o.sum);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.first = self.first.min(o.first);
        self.dist.merge(o.dist, exact_limit);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Slow {
    pub duration: f64,
    pub seq: u64,
    pub request_id: Option<String>,
    pub endpoint: String,
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Minute {
    pub count: u64,
    pub by_type: HashMap<String, u64>,
    /// (position, request id), the first few by position.
    pub request_ids: Vec<(u64, String)>,
}

impl Minute {
    pub(super) fn add_request_id(&mut self, seq: u64, id: &str) {
        if self.request_ids.len() < TIMELINE_REQUEST_IDS {
            self.request_ids.push((seq, id.to_owned()));
        } else if let Some(max) = self.request_ids.iter_mut().max_by_key(|(s, _)| *s)
            && seq < max.0
        {
            *max = (seq, id.to_owned());
        }
    }
    pub(super) fn merge(&mut self, o: Minute) {
        self.count += o.count;
        for (k, v) in o.by_type {
            *self.by_type.entry(k).or_default() += v;
        }
        for (s, id) in o.request_ids {
            self.add_request_id(s, &id);
        }
    }
}

/// Everything kept per endpoint (path) of one day: one lookup per request finds both.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub name: String,
    /// Requests (every completed request, with or without a duration).
    pub seen: Counted,
    /// Durations (requests with a numeric duration); `None` until the first one.
    pub perf: Option<Perf>,
}

/// Aggregates of one day (or of everything).
#[derive(Clone, Default)]
pub(crate) struct Agg {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    /// User ids (non-string ids as `"\u{1}"` + their JSON text).
    pub users: StrSet,
    /// Endpoints in order of first appearance in this aggregate; found by name through
    /// `endpoint_index`.
    pub endpoints: Vec<Endpoint>,
    endpoint_index: StrIndex,
    pub status_int: HashMap<i64, Counted>,
    pub status_other: HashMap<String, Counted>,
    pub errors: HashMap<String, Counted>,
    pub error_total: u64,
    pub timeline: HashMap<i64, Minute>,
    pub slow: Vec<Slow>,
    pub exact_values: usize,
}

pub(super) fn push_slow(v: &mut Vec<Slow>, s: Slow) {
    v.push(s);
    if v.len() > SLOW_REQUESTS * 2 {
        sort_slow(v);
        v.truncate(SLOW_REQUESTS);
    }
}

pub(crate) fn sort_slow(v: &mut [Slow]) {
    v.sort_by(|a, b| b.duration.total_cmp(&a.duration).then(a.seq.cmp(&b.seq)));
}

impl Agg {
    /// The index of endpoint `name` in `endpoints` (added, first seen at `seq`, if new).
    #[inline]
    pub(super) fn endpoint(&mut self, name: &str, seq: u64) -> usize {
        if let Some(i) = self.endpoint_index.get(name.as_bytes()) {
            return i as usize;
        }
        let i = self.endpoints.len();
        self.endpoints.push(Endpoint {
            name: name.to_owned(),
            seen: Counted::new(seq),
            perf: None,
        });
        self.endpoint_index.insert(name.as_bytes(), i as u32);
        i
    }

    pub(crate) fn merge(&mut self, o: Agg, exact_limit: usize) {
        self.total += o.total;
        self.successful += o.successful;
        self.failed += o.failed;
        self.error_total += o.error_total;
        if self.users.len() < o.users.len() {
            let mine = std::mem::replace(&mut self.users, o.users);
            self.users.extend(mine);
        } else {
            self.users.extend(o.users);
        }
        for e in o.endpoints {
            let i = self.endpoint(&e.name, e.seen.first);
            let mine = &mut self.endpoints[i];
            mine.seen.merge(&e.seen);
            match (&mut mine.perf, e.perf) {
                (Some(a), Some(b)) => a.merge(b, exact_limit),
                (a @ None, b) => *a = b,
                (Some(_), None) => {}
            }
        }
        merge_counts(&mut self.status_int, o.status_int);
        merge_counts(&mut self.status_other, o.status_other);
        merge_counts(&mut self.errors, o.errors);
        for (k, m) in o.timeline {
            self.timeline.entry(k).or_default().merge(m);
        }
        for s in o.slow {
            push_slow(&mut self.slow, s);
        }
        sort_slow(&mut self.slow);
        self.slow.truncate(SLOW_REQUESTS);
        self.exact_values += o.exact_values;
    }
}

/// The day key of lines without a readable timestamp.
pub const UNKNOWN_DAY: i64 = i64::MIN;
