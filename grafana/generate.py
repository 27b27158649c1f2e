#!/usr/bin/env python3
"""Writes grafana/dashboards/*.json, the stack's provisioned dashboards (python3 grafana/generate.py).

The JSON files are committed; edit this script and re-run it rather than editing them by hand, so that the
shared conventions stay in one place: datasources by their provisioned uid (prometheus, loki), a `service`
variable (job = OTel service.name) and where it applies a `route` variable (http.route), `$__rate_interval`
in every rate(), unique panel ids, schemaVersion 41 (Grafana 12). tests/tests/grafana/ checks the output.
Metric names: see grafana/README.md (verified against the running app and collector).
"""
import json
import os
import pathlib
import urllib.parse

# GRAFANA_DASHBOARDS_OUT: write elsewhere (tests/tests/grafana/dashboards.rs compares a fresh run with the committed files).
OUT = pathlib.Path(os.environ.get("GRAFANA_DASHBOARDS_OUT") or pathlib.Path(__file__).resolve().parent / "dashboards")
PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
SCHEMA_VERSION = 41
ALERTMANAGER = {"type": "alertmanager", "uid": "alertmanager"}


def threshold_lines(*steps, color="red"):
    """Field config that draws alert thresholds on a time series as dashed lines (steps: (value, colour))."""
    return {"thresholds": {"mode": "absolute", "steps": [{"color": "transparent", "value": None}] +
                           [{"color": c, "value": v} for v, c in steps]},
            "custom": {"thresholdsStyle": {"mode": "dashed"}}}


def explore(ds_uid, query):
    """A Grafana Explore link (the Explore URL format of Grafana 10+) for one query on datasource `ds_uid`, over
    the dashboard's time range; Grafana variables (${...}) stay readable, everything else is URL-encoded."""
    panes = {"a": {"datasource": ds_uid, "queries": [dict(refId="A", datasource={"uid": ds_uid}, **query)],
                   "range": {"from": "${__from}", "to": "${__to}"}}}
    text = urllib.parse.quote(json.dumps(panes, separators=(",", ":")), safe="")
    for var in ("service", "__from", "__to", "__field.labels.http_route"):
        text = text.replace(urllib.parse.quote("${" + var + "}", safe=""), "${" + var + "}")
    return f"/explore?schemaVersion=1&orgId=1&panes={text}"


def error_links(route_label=False):
    """Data links from an error panel to the matching logs (Loki, ERROR lines of the service) and traces
    (Jaeger, failed spans of the service, of the clicked route when the series has one)."""
    tags = "error=true" + (' http.route="${__field.labels.http_route}"' if route_label else "")
    return [
        {"title": "Error logs of ${service} (Loki)", "targetBlank": True,
         "url": explore("loki", {"expr": '{service_name="${service}"} | severity_text=~"ERROR|FATAL"',
                                 "queryType": "range"})},
        {"title": "Failed traces of ${service} (Jaeger)", "targetBlank": True,
         "url": explore("jaeger", {"queryType": "search", "service": "${service}", "tags": tags})},
    ]

DASHBOARDS = [
    ("image2model-overview", "Service overview"),
    ("image2model-models", "Model generation"),
    ("image2model-provider", "External provider"),
    ("image2model-host", "Host"),
    ("image2model-logs", "Logs"),
    ("image2model-telemetry", "Telemetry pipeline"),
]


class Board:
    def __init__(self, uid, title, description):
        self.uid, self.title, self.description = uid, title, description
        self.panels, self.next_id, self.y, self.x, self.row_h = [], 1, 0, 0, 0
        self.variables = []

    def var_query(self, name, label, query, ds=PROM, multi=False, include_all=False, all_value=None):
        v = {
            "name": name,
            "label": label,
            "type": "query",
            "datasource": ds,
            "query": query if ds is LOKI else {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "definition": query,
            "refresh": 2,
            "sort": 1,
            "multi": multi,
            "includeAll": include_all,
            "current": {},
            "options": [],
            "hide": 0,
        }
        if all_value is not None:
            v["allValue"] = all_value
        self.variables.append(v)

    def _place(self, w, h):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title):
        if self.x:
            self.x, self.y = 0, self.y + self.row_h
        self.panels.append({"id": self.next_id, "type": "row", "title": title, "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.next_id += 1
        self.y += 1
        self.row_h = 0

    def panel(self, kind, title, targets, unit="short", w=12, h=8, ds=PROM, description="", options=None,
              field=None, links=None):
        refs = "ABCDEFGHIJ"
        tgts = []
        for i, t in enumerate(targets):
            t = dict(t)
            t.setdefault("refId", refs[i])
            t["datasource"] = ds
            tgts.append(t)
        defaults = {"unit": unit}
        if field:
            defaults.update(field)
        if links:
            defaults["links"] = links
        p = {
            "id": self.next_id,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": ds,
            "gridPos": self._place(w, h),
            "targets": tgts,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options or {},
        }
        self.panels.append(p)
        self.next_id += 1

    def ts(self, title, targets, **kw):
        opts = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"}}
        self.panel("timeseries", title, targets, options=opts, **kw)

    def alert_list(self, title, label_filter, w=12, h=8):
        """Grafana's alert list: the Prometheus rules' alerts (the Prometheus datasource manages them, its
        Alertmanager is the provisioned one), filtered by label, firing and pending."""
        self.panels.append({
            "id": self.next_id, "type": "alertlist", "title": title, "gridPos": self._place(w, h),
            "datasource": ALERTMANAGER,
            "options": {"viewMode": "list", "groupMode": "default", "groupBy": [], "maxItems": 20,
                        "sortOrder": 1, "dashboardAlerts": False, "alertName": "", "showInstances": True,
                        "alertInstanceLabelFilter": label_filter,
                        "stateFilter": {"firing": True, "pending": True, "noData": False, "normal": False,
                                        "error": True}},
            "links": [{"title": "Alert groups and silences (Alertmanager)",
                       "url": "/alerting/groups?alertmanager=Alertmanager", "targetBlank": True}],
        })
        self.next_id += 1

    def stat(self, title, targets, **kw):
        kw.setdefault("w", 6)
        kw.setdefault("h", 5)
        opts = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value", "graphMode": "area", "textMode": "auto"}
        self.panel("stat", title, targets, options=opts, **kw)

    def json(self):
        links = [{"title": t, "type": "link", "url": f"/d/{u}", "icon": "dashboard", "targetBlank": False,
                  "keepTime": True, "includeVars": True, "asDropdown": False, "tags": [], "tooltip": ""}
                 for u, t in DASHBOARDS if u != self.uid]
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["image2model", "opentelemetry"],
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"},
            "timepicker": {},
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "links": links,
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                "type": "dashboard"}]},
            "templating": {"list": self.variables},
            "panels": self.panels,
        }


def q(expr, legend="__auto", **kw):
    t = {"expr": expr, "legendFormat": legend, "range": True}
    t.update(kw)
    return t


def service_var(b, metric):
    b.var_query("service", "Service", f"label_values({metric}, job)")


def zero_if_absent(expr_failures, expr_all):
    """`failures or 0 * all`: 0 instead of "No data" while nothing failed."""
    return f"({expr_failures}) or (0 * {expr_all})"


def overview():
    b = Board("image2model-overview", "Service overview",
              "RED metrics of an HTTP service (OTel http.server.* metrics), latency with exemplars from the "
              "collector's span metrics (click one to open its trace in Jaeger), and the service's SLOs.")
    service_var(b, "http_server_request_duration_seconds_count")
    b.var_query("route", "Route", 'label_values(http_server_request_duration_seconds_count{job="$service"}, http_route)',
                multi=True, include_all=True, all_value=".*")
    sel = 'job="$service", http_route=~"$route"'
    total_by_route = f"sum by (http_route) (rate(http_server_request_duration_seconds_count{{{sel}}}[$__rate_interval]))"
    total = f"sum(rate(http_server_request_duration_seconds_count{{{sel}}}[$__rate_interval]))"
    err_by_route = f'sum by (http_route) (rate(http_server_request_duration_seconds_count{{{sel}, http_response_status_code=~"5.."}}[$__rate_interval]))'
    err = f'sum(rate(http_server_request_duration_seconds_count{{{sel}, http_response_status_code=~"5.."}}[$__rate_interval]))'

    b.row("Alerts")
    b.stat("Alerts firing for this service",
           [q('count(ALERTS{alertstate="firing", job="$service"}) or vector(0)', "firing")],
           unit="short", w=6, h=8, field={"thresholds": {"mode": "absolute", "steps": [
               {"color": "green", "value": None}, {"color": "red", "value": 1}]}})
    b.stat("Alerts firing in the stack (Watchdog excluded)",
           [q('count(ALERTS{alertstate="firing", alertname!="Watchdog"}) or vector(0)', "firing")],
           unit="short", w=6, h=8, field={"thresholds": {"mode": "absolute", "steps": [
               {"color": "green", "value": None}, {"color": "red", "value": 1}]}})
    b.alert_list("Firing and pending alerts of this service", '{job="$service"}')

    b.row("Service level objectives")
    b.stat("Availability, last 24 h (SLO 99.5% not 5xx)",
           [q('1 - job:slo_availability_errors:ratio_rate1d{job="$service"}', "availability")],
           unit="percentunit", field={"decimals": 3, "thresholds": {"mode": "absolute", "steps": [
               {"color": "red", "value": None}, {"color": "green", "value": 0.995}]}})
    b.stat("Availability budget burn rate, 1 h (page at 14.4)",
           [q('job:slo_availability_errors:ratio_rate1h{job="$service"} / 0.005', "burn rate")],
           unit="x", field={"decimals": 2, "thresholds": {"mode": "absolute", "steps": [
               {"color": "green", "value": None}, {"color": "orange", "value": 1}, {"color": "red", "value": 14.4}]}})
    b.stat("Requests under 1 s, last 24 h (SLO 99%)",
           [q('1 - job:slo_latency_slow:ratio_rate1d{job="$service"}', "fast")],
           unit="percentunit", field={"decimals": 3, "thresholds": {"mode": "absolute", "steps": [
               {"color": "red", "value": None}, {"color": "green", "value": 0.99}]}})
    b.stat("Latency budget burn rate, 1 h (page at 14.4)",
           [q('job:slo_latency_slow:ratio_rate1h{job="$service"} / 0.01', "burn rate")],
           unit="x", field={"decimals": 2, "thresholds": {"mode": "absolute", "steps": [
               {"color": "green", "value": None}, {"color": "orange", "value": 1}, {"color": "red", "value": 14.4}]}})
    b.stat("Availability error budget left, 30 days",
           [q('job:slo_availability:error_budget_remaining30d{job="$service"}', "budget left")],
           unit="percentunit", field={"decimals": 1, "thresholds": {"mode": "absolute", "steps": [
               {"color": "red", "value": None}, {"color": "orange", "value": 0.25}, {"color": "green", "value": 0.5}]}})
    b.stat("Latency error budget left, 30 days",
           [q('job:slo_latency:error_budget_remaining30d{job="$service"}', "budget left")],
           unit="percentunit", field={"decimals": 1, "thresholds": {"mode": "absolute", "steps": [
               {"color": "red", "value": None}, {"color": "orange", "value": 0.25}, {"color": "green", "value": 0.5}]}})
    b.ts("Error budget burn rate by window (1 = budget used up in exactly 30 days; lines: page at 14.4x, 6x)",
         [q('job:slo_availability_errors:ratio_rate5m{job="$service"} / 0.005', "availability 5m"),
          q('job:slo_availability_errors:ratio_rate1h{job="$service"} / 0.005', "availability 1h"),
          q('job:slo_availability_errors:ratio_rate6h{job="$service"} / 0.005', "availability 6h"),
          q('job:slo_latency_slow:ratio_rate5m{job="$service"} / 0.01', "latency 5m"),
          q('job:slo_latency_slow:ratio_rate1h{job="$service"} / 0.01', "latency 1h"),
          q('job:slo_latency_slow:ratio_rate6h{job="$service"} / 0.01', "latency 6h")],
         unit="x", w=12, field=threshold_lines((6, "orange"), (14.4, "red")))

    b.row("Traffic and errors")
    b.ts("Request rate by route", [q(total_by_route, "{{http_route}}")], unit="reqps")
    b.ts("Responses by status code",
         [q(f"sum by (http_response_status_code) (rate(http_server_request_duration_seconds_count{{{sel}}}[$__rate_interval]))",
            "{{http_response_status_code}}")], unit="reqps")
    b.ts("5xx error rate by route (click: its logs and failed traces)",
         [q(zero_if_absent(err_by_route, total_by_route), "{{http_route}}")], unit="reqps",
         links=error_links(route_label=True))
    b.ts("5xx error ratio (HighErrorRate over 10%; click: logs and failed traces)",
         [q(f"({zero_if_absent(err, total)}) / {total}", "5xx ratio")], unit="percentunit",
         field={"max": 1, "min": 0, **threshold_lines((0.1, "red"))}, links=error_links())

    b.row("Latency")
    spanm = 'job="$service", span_kind="SPAN_KIND_SERVER", http_route=~"$route"'
    b.ts("Latency by route, p50 / p95 / p99 (span metrics; dots are exemplars, click to open the trace)",
         [q(f"histogram_quantile({p}, sum by (le, http_route) (rate(traces_span_metrics_duration_seconds_bucket{{{spanm}}}[$__rate_interval])))",
            f"p{int(p * 100)} {{{{http_route}}}}", exemplar=True) for p in (0.5, 0.95, 0.99)],
         unit="s", w=24, h=10)
    b.ts("Latency by route, p50 / p95 / p99 (the app's http.server.request.duration)",
         [q(f"histogram_quantile({p}, sum by (le, http_route) (rate(http_server_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))",
            f"p{int(p * 100)} {{{{http_route}}}}") for p in (0.5, 0.95, 0.99)], unit="s")
    b.ts("Active requests", [q('sum by (http_request_method) (http_server_active_requests{job="$service"})',
                               "{{http_request_method}}")], unit="short")
    return b


def models():
    b = Board("image2model-models", "Model generation",
              "The Python design's business metrics: models generated, generation and batch durations, tasks and the queue.")
    service_var(b, "tasks_total")
    s = 'job="$service"'
    b.row("Models")
    b.ts("Models generated by status", [q(f"sum by (status) (rate(models_generated_total{{{s}}}[$__rate_interval]))",
                                          "{{status}}")], unit="ops")
    fail = f'sum(rate(models_generated_total{{{s}, status="failure"}}[$__rate_interval]))'
    alls = f"sum(rate(models_generated_total{{{s}}}[$__rate_interval]))"
    b.ts("Failed generations, ratio (JobsFailing alerts over 25%; click: logs and failed traces)",
         [q(f"({zero_if_absent(fail, alls)}) / {alls}", "failure ratio")], unit="percentunit",
         field={"min": 0, "max": 1, **threshold_lines((0.25, "red"))}, links=error_links())
    b.ts("Generation time (successful models), p50 / p95",
         [q(f"histogram_quantile({p}, sum by (le) (rate(model_generation_duration_seconds_bucket{{{s}}}[$__rate_interval])))",
            f"p{int(p * 100)}") for p in (0.5, 0.95)], unit="s")
    b.ts("Batch duration by batch size, p95",
         [q(f"histogram_quantile(0.95, sum by (le, batch_size) (rate(batch_processing_duration_seconds_bucket{{{s}}}[$__rate_interval])))",
            "{{batch_size}}")], unit="s")
    b.row("Tasks and queue")
    b.ts("Task rate by task and status",
         [q(f"sum by (task_name, status) (rate(tasks_total{{{s}}}[$__rate_interval]))", "{{task_name}} {{status}}")],
         unit="ops")
    b.ts("Task duration by task, p50 / p95",
         [q(f"histogram_quantile({p}, sum by (le, task_name) (rate(task_duration_seconds_bucket{{{s}}}[$__rate_interval])))",
            f"p{int(p * 100)} {{{{task_name}}}}") for p in (0.5, 0.95)], unit="s")
    b.ts("Queue length (JobQueueBacklog alerts over 100 for 10 min)",
         [q(f"max by (queue_name) (task_queue_length{{{s}}})", "{{queue_name}}")], unit="short", w=24,
         field=threshold_lines((100, "orange")))
    return b


def provider():
    b = Board("image2model-provider", "External provider",
              "Calls to the FAL.AI-style generation provider: by endpoint and status, durations, rate limits, retries.")
    service_var(b, "fal_api_calls_total")
    s = 'job="$service"'
    calls_by_ep = f"sum by (endpoint) (rate(fal_api_calls_total{{{s}}}[$__rate_interval]))"
    b.ts("Calls by endpoint and status",
         [q(f"sum by (endpoint, status) (rate(fal_api_calls_total{{{s}}}[$__rate_interval]))", "{{endpoint}} {{status}}")],
         unit="reqps")
    b.ts("Call duration by endpoint, p50 / p95",
         [q(f"histogram_quantile({p}, sum by (le, endpoint) (rate(fal_api_duration_seconds_bucket{{{s}}}[$__rate_interval])))",
            f"p{int(p * 100)} {{{{endpoint}}}}") for p in (0.5, 0.95)], unit="s")
    b.stat("Rate limits hit, last hour (ProviderRateLimited over 5)",
           [q(f"sum(increase(fal_rate_limits_total{{{s}}}[1h])) or vector(0)", "429s")], unit="short",
           field={"thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                               {"color": "orange", "value": 5}]}})
    b.ts("Rate-limit hits", [q(f"sum(rate(fal_rate_limits_total{{{s}}}[$__rate_interval])) or vector(0)", "429")],
         unit="ops", w=18, h=5)
    retried = f'sum by (endpoint) (rate(fal_api_calls_total{{{s}, status=~"429|5..|error"}}[$__rate_interval]))'
    b.ts("Retried calls by endpoint (429, 5xx and transport errors are retried with backoff; click: logs and traces)",
         [q(zero_if_absent(retried, calls_by_ep), "{{endpoint}}")], unit="reqps", links=error_links())
    b.ts("HTTP client duration by server, p95 (http.client.request.duration)",
         [q(f"histogram_quantile(0.95, sum by (le, server_address, http_request_method) (rate(http_client_request_duration_seconds_bucket{{{s}}}[$__rate_interval])))",
            "{{http_request_method}} {{server_address}}")], unit="s")
    return b


def host():
    b = Board("image2model-host", "Host",
              "Host and process metrics (OTel system.* and process.* semantic conventions, from the host-metrics crate).")
    service_var(b, "system_memory_usage_bytes")
    s = 'job="$service"'
    b.row("System")
    b.ts("CPU utilisation", [q(f"avg by (host_name) (system_cpu_utilization_ratio{{{s}}})", "{{host_name}}")],
         unit="percentunit", field={"min": 0, "max": 1})
    b.ts("Load average", [q(f"max(system_cpu_load_average_{w}{{{s}}})", w) for w in ("1m", "5m", "15m")],
         unit="short")
    b.ts("Memory by state", [q(f"sum by (system_memory_state) (system_memory_usage_bytes{{{s}}})",
                               "{{system_memory_state}}")], unit="bytes")
    b.ts("Memory used (HighMemoryUsage alerts over 90%)",
         [q(f'max by (host_name) (system_memory_utilization_ratio{{{s}, system_memory_state="used"}})', "{{host_name}}")],
         unit="percentunit", field={"min": 0, "max": 1, **threshold_lines((0.9, "red"))})
    b.ts("Filesystem used by mountpoint (LowDiskSpace alerts under 10% free)",
         [q(f'sum by (system_filesystem_mountpoint) (system_filesystem_usage_bytes{{{s}, system_filesystem_state="used"}}) '
            f'/ sum by (system_filesystem_mountpoint) (system_filesystem_usage_bytes{{{s}, system_filesystem_state=~"used|free"}})',
            "{{system_filesystem_mountpoint}}")], unit="percentunit",
         field={"min": 0, "max": 1, **threshold_lines((0.9, "red"))})
    b.ts("Disk I/O", [q(f"sum by (system_device, disk_io_direction) (rate(system_disk_io_bytes_total{{{s}}}[$__rate_interval]))",
                        "{{system_device}} {{disk_io_direction}}")], unit="Bps")
    b.ts("Network I/O by interface",
         [q(f"sum by (network_interface_name, network_io_direction) (rate(system_network_io_bytes_total{{{s}}}[$__rate_interval]))",
            "{{network_interface_name}} {{network_io_direction}}")], unit="Bps", w=24)
    b.row("Process")
    b.ts("Process CPU by mode", [q(f"sum by (cpu_mode) (process_cpu_utilization_ratio{{{s}}})", "{{cpu_mode}}")],
         unit="percentunit")
    b.ts("Process memory", [q(f"sum(process_memory_usage_bytes{{{s}}})", "resident"),
                            q(f"sum(process_memory_virtual_bytes{{{s}}})", "virtual")], unit="bytes")
    b.ts("Process threads and open files", [q(f"sum(process_thread_count{{{s}}})", "threads"),
                                            q(f"sum(process_unix_file_descriptor_count{{{s}}})", "file descriptors")],
         unit="short", w=24)
    return b


def logs():
    b = Board("image2model-logs", "Logs",
              "Logs in Loki (OTLP from the collector): volume by level and service, latest errors. Each line with a "
              "trace_id links to its trace in Jaeger (the Loki datasource's derived field).")
    b.var_query("service", "Service", "label_values(service_name)", ds=LOKI)
    b.ts("Log volume by level", [{"expr": 'sum by (severity_text) (count_over_time({service_name="$service"} [$__auto]))',
                                  "legendFormat": "{{severity_text}}", "queryType": "range"}], unit="short", ds=LOKI)
    b.ts("Log volume by service", [{"expr": 'sum by (service_name) (count_over_time({service_name=~".+"} [$__auto]))',
                                    "legendFormat": "{{service_name}}", "queryType": "range"}], unit="short", ds=LOKI)
    b.panel("logs", "Latest errors (expand a line: trace_id links to Jaeger)",
            [{"expr": '{service_name="$service"} | severity_text=~"ERROR|FATAL"', "queryType": "range"}],
            ds=LOKI, w=24, h=12,
            options={"showTime": True, "wrapLogMessage": True, "sortOrder": "Descending", "enableLogDetails": True,
                     "prettifyLogMessage": False, "dedupStrategy": "none", "showCommonLabels": False})
    b.panel("logs", "Warnings", [{"expr": '{service_name="$service"} | severity_text=~"WARN|WARNING"',
                                  "queryType": "range"}],
            ds=LOKI, w=24, h=10,
            options={"showTime": True, "wrapLogMessage": True, "sortOrder": "Descending", "enableLogDetails": True,
                     "prettifyLogMessage": False, "dedupStrategy": "none", "showCommonLabels": False})
    return b


def telemetry():
    b = Board("image2model-telemetry", "Telemetry pipeline",
              "Is telemetry getting through? The collector's accepted / refused / sent / failed items per signal, "
              "and what the service itself dropped or failed to export.")
    service_var(b, "otel_sdk_processor_span_processed_total")
    b.row("Collector (otelcol_* self-metrics)")
    for title, kind in (("Accepted by receivers", "receiver_accepted"), ("Refused by receivers", "receiver_refused")):
        b.ts(f"{title}, per signal",
             [q(f"sum by (job) (rate(otelcol_{kind}_{sig}[$__rate_interval]))", f"{{{{job}}}} {label}")
              for sig, label in (("spans", "spans"), ("metric_points", "metric points"), ("log_records", "log records"))],
             unit="ops")
    b.ts("Sent by exporters",
         [q(f"sum by (job, exporter) (rate(otelcol_exporter_sent_{sig}[$__rate_interval]))", "{{job}} {{exporter}}")
          for sig in ("spans", "metric_points", "log_records")], unit="ops")
    b.ts("Failed to send by exporters",
         # The collector creates send_failed_* only at the first failure: 0 per exporter until then.
         [q(zero_if_absent(f"sum by (job, exporter) (rate(otelcol_exporter_send_failed_{sig}[$__rate_interval]))",
                           f"sum by (job, exporter) (rate(otelcol_exporter_sent_{sig}[$__rate_interval]))"),
            "{{job}} {{exporter}}") for sig in ("spans", "log_records")], unit="ops")
    b.ts("Exporter queue fill", [q("max by (job, exporter) (otelcol_exporter_queue_size / otelcol_exporter_queue_capacity)",
                                   "{{job}} {{exporter}}")], unit="percentunit",
         field={"min": 0, "max": 1, **threshold_lines((0.8, "orange"))})
    b.ts("Scrape targets up", [q("up", "{{job}} {{instance}}")], unit="short", field={"min": 0, "max": 1})
    b.row("Service (SDK self-metrics)")
    s = 'job="$service"'
    b.ts("Dropped by the batch processors (queue full)",
         [q(f'sum by (otel_component_name) (rate(otel_sdk_processor_span_processed_total{{{s}, error_type="queue_full"}}[$__rate_interval]))',
            "{{otel_component_name}}"),
          q(f'sum by (otel_component_name) (rate(otel_sdk_processor_log_processed_total{{{s}, error_type="queue_full"}}[$__rate_interval]))',
            "{{otel_component_name}}")], unit="ops")
    b.ts("Log lines dropped by the file writer",
         [q(f"sum by (log_file_name) (rate(telemetry_log_file_lines_dropped_total{{{s}}}[$__rate_interval]))",
            "{{log_file_name}}")], unit="ops")
    ok = f"sum by (signal) (rate(telemetry_exporter_batches_total{{{s}}}[$__rate_interval]))"
    failed = f'sum by (signal) (rate(telemetry_exporter_batches_total{{{s}, error_type!=""}}[$__rate_interval]))'
    b.ts("OTLP export calls by signal", [q(ok, "{{signal}} all")], unit="ops")
    b.ts("OTLP export calls failed by signal", [q(zero_if_absent(failed, ok), "{{signal}} failed")], unit="ops")
    b.ts("Items handed to the exporters",
         [q(f"sum by (otel_component_type) (rate(otel_sdk_exporter_span_exported_total{{{s}}}[$__rate_interval]))",
            "{{otel_component_type}}"),
          q(f"sum by (otel_component_type) (rate(otel_sdk_exporter_log_exported_total{{{s}}}[$__rate_interval]))",
            "{{otel_component_type}}")], unit="ops", w=24)
    return b


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for make in (overview, models, provider, host, logs, telemetry):
        b = make()
        (OUT / f"{b.uid.removeprefix('image2model-')}.json").write_text(json.dumps(b.json(), indent=2) + "\n")


if __name__ == "__main__":
    main()
