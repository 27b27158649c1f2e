//! host-metrics (work in progress).
