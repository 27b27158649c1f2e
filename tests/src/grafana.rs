//! Grafana dashboards and provisioning: loading and expression extraction (filled in by the dashboards work).
