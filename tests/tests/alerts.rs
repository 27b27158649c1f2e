//! Alert delivery end to end, against the real Prometheus and Alertmanager with the repository's rules and
//! routing (`prometheus/rules/`, `alertmanager/alertmanager.yml`, rendered only where an address must become a
//! local receiver): every route delivers, and each symptom notifies once.
//!
//! - ticket: with the provider simulator failing most generations, `JobsFailing` fires in Prometheus and
//!   arrives as one e-mail through a real SMTP conversation with a local server;
//! - page: a fast availability burn (pushed to Alertmanager's API, with its slow-burn ticket and `HighErrorRate`
//!   of the same symptom) reaches the webhook and Slack (a local receiver: Slack's payload, coloured) once;
//!   the two tickets are muted by inhibition and never e-mailed;
//! - heartbeat: the `Watchdog` reaches its receiver and is repeated after its 5-minute repeat interval, while
//!   the page, still firing, is not repeated (its repeat interval is hours);
//! - one path per series: no app metric is stored under two scrape jobs, and none carries a label that changes
//!   at every start (a service.instance.id, a pid, the collector's instance id).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stack_tests::render::WEBHOOK_PLACEHOLDER;
use stack_tests::{App, Mail, Sink, SmtpSink, Stack, StackOptions, eventually};
use stack_tests::{http, query};

/// The heartbeat receiver's placeholder URL in alertmanager.yml.
const HEARTBEAT_PLACEHOLDER: &str = "http://127.0.0.1:9095/heartbeat";

/// The three local receivers a rendered alertmanager.yml points at.
struct Receivers {
    page_webhook: Sink,
    slack: Sink,
    heartbeat: Sink,
    smtp: SmtpSink,
}

impl Receivers {
    fn start() -> Receivers {
        Receivers {
            page_webhook: Sink::start().expect("webhook receiver"),
            slack: Sink::start().expect("Slack receiver"),
            heartbeat: Sink::start().expect("heartbeat receiver"),
            smtp: SmtpSink::start().expect("SMTP server"),
        }
    }
}

/// alertmanager.yml with every delivery address made local: webhook and heartbeat URLs, Slack's URL (written
/// to `dir/slack_api_url`, read through api_url_file), the SMTP relay (no TLS on loopback), the password file.
/// Every other line is the repository's.
fn render_alertmanager(src: &str, r: &Receivers, dir: &Path) -> String {
    let slack_file = dir.join("slack_api_url");
    std::fs::write(&slack_file, r.slack.webhook_url()).expect("slack url file");
    let password_file = dir.join("smtp_password");
    std::fs::write(&password_file, "unused: the local server offers no AUTH")
        .expect("password file");
    let mut out = src.to_owned();
    for (from, to) in [
        (WEBHOOK_PLACEHOLDER.to_owned(), r.page_webhook.webhook_url()),
        (HEARTBEAT_PLACEHOLDER.to_owned(), r.heartbeat.webhook_url()),
        (
            "/etc/alertmanager/secrets/slack_api_url".to_owned(),
            slack_file.display().to_string(),
        ),
        (
            "/etc/alertmanager/secrets/smtp_password".to_owned(),
            password_file.display().to_string(),
        ),
        (
            "smtp_smarthost: smtp.example.org:587".to_owned(),
            format!("smtp_smarthost: {}", r.smtp.addr()),
        ),
        (
            "smtp_require_tls: true".to_owned(),
            "smtp_require_tls: false".to_owned(),
        ),
    ] {
        assert!(out.contains(&from), "alertmanager.yml has no `{from}`");
        out = out.replace(&from, &to);
    }
    out
}

/// Writes the rendered config over the one the stack started Alertmanager with and reloads it.
fn reload_alertmanager(stack: &Stack, config: &Path, text: &str, smtp: &str) {
    std::fs::write(config, text).expect("write alertmanager.yml");
    let client = http::client().expect("http client");
    let resp = client
        .post(format!("{}/-/reload", stack.alertmanager_url()))
        .send()
        .expect("reload request");
    assert!(resp.status().is_success(), "reload: {}", resp.status());
    let status: Value = client
        .get(format!("{}/api/v2/status", stack.alertmanager_url()))
        .send()
        .and_then(|r| r.json())
        .expect("status");
    assert!(
        status["config"]["original"]
            .as_str()
            .is_some_and(|c| c.contains(smtp)),
        "Alertmanager did not load the rendered config"
    );
}

/// The labels and annotations of one rule-shaped alert pushed to Alertmanager's API.
fn pushed(alertname: &str, severity: &str, symptom: &str, summary: &str) -> Value {
    let mut labels = json!({
        "alertname": alertname, "job": "checkout", "severity": severity, "symptom": symptom,
    });
    if alertname.starts_with("SLO") {
        labels["slo"] = json!("availability");
    }
    json!({
        "labels": labels,
        "annotations": {
            "summary": summary,
            "description": "pushed by the alert delivery test",
            "runbook_url": format!("https://example.invalid/runbooks#{}", alertname.to_lowercase()),
            "dashboard_url": "http://localhost:3000/d/image2model-overview/service-overview?var-service=checkout",
        },
        "generatorURL": "http://localhost:9090/graph",
    })
}

/// A fast availability burn of service `checkout`: its page, and the two tickets of the same symptom.
fn burning_checkout() -> Value {
    json!([
        pushed(
            "SLOAvailabilityBudgetBurn",
            "critical",
            "http-errors",
            "checkout burns its availability error budget fast"
        ),
        pushed(
            "SLOAvailabilityBudgetBurn",
            "warning",
            "http-errors",
            "checkout burns its availability error budget steadily"
        ),
        pushed(
            "HighErrorRate",
            "error",
            "http-errors",
            "High error rate in checkout"
        ),
    ])
}

fn push(stack: &Stack, alerts: &Value) {
    http::post_json(
        &format!("{}/api/v2/alerts", stack.alertmanager_url()),
        alerts,
    )
    .unwrap_or_else(|e| panic!("push alerts: {e}"));
}

/// (receiver, alertname, job, severity) of every firing alert in webhook payloads, once per payload.
fn firing(payloads: &[Value]) -> Vec<(String, String, String, String)> {
    payloads
        .iter()
        .flat_map(|p| {
            let receiver = p["receiver"].as_str().unwrap_or("").to_owned();
            p["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a["status"] == "firing")
                .map(move |a| {
                    let l = |k: &str| a["labels"][k].as_str().unwrap_or("").to_owned();
                    (receiver.clone(), l("alertname"), l("job"), l("severity"))
                })
        })
        .collect()
}

/// Subject lines of the e-mails received.
fn subjects(mails: &[Mail]) -> Vec<String> {
    mails.iter().filter_map(|m| m.header("subject")).collect()
}

#[test]
fn every_route_delivers_once_per_symptom_and_a_page_mutes_its_tickets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receivers = Receivers::start();
    let stack_dir = dir.path().join("stack");
    let mut opts = StackOptions::new(&stack_dir);
    opts.interval = Some(Duration::from_secs(2));
    opts.webhook_url = Some(receivers.page_webhook.webhook_url());
    let stack = Stack::up(opts).expect("stack comes up");
    let src = std::fs::read_to_string(
        stack_tests::paths::repo_root().join("alertmanager/alertmanager.yml"),
    )
    .expect("alertmanager.yml");
    let rendered = render_alertmanager(&src, &receivers, dir.path());
    reload_alertmanager(
        &stack,
        &stack_dir.join("alertmanager.yml"),
        &rendered,
        &receivers.smtp.addr(),
    );

    let app_dir = dir.path().join("app");
    let app = App::start(
        &stack,
        &app_dir,
        &[
            // Most generations fail for good, and many calls get a transient 500 first.
            ("IMAGE2MODEL_SIM_FAILURE_RATE", "0.9"),
            ("IMAGE2MODEL_SIM_ERROR_RATE", "0.5"),
            ("IMAGE2MODEL_PROVIDER_MAX_RETRIES", "1"),
            ("IMAGE2MODEL_RETRY_BASE", "50ms"),
        ],
    )
    .expect("image2model starts");
    let start = Instant::now();
    let load = app
        .loadgen(&app_dir, 15, Duration::from_secs(480))
        .expect("loadgen starts");
    push(&stack, &burning_checkout());

    // Page: webhook and Slack, once; its two tickets muted.
    let paged = eventually(Duration::from_secs(90), Duration::from_secs(2), || {
        let hooks = firing(&receivers.page_webhook.alerts());
        (!hooks.is_empty() && !receivers.slack.alerts().is_empty()).then_some(hooks)
    })
    .unwrap_or_else(|| {
        panic!(
            "no page within 90 s: webhook {:?}, slack {:?}",
            receivers.page_webhook.alerts(),
            receivers.slack.alerts()
        )
    });
    let paged_at = start.elapsed();
    assert_eq!(
        paged,
        vec![(
            "page".to_owned(),
            "SLOAvailabilityBudgetBurn".to_owned(),
            "checkout".to_owned(),
            "critical".to_owned()
        )],
        "the page alone reaches the page webhook"
    );
    check_slack(&receivers.slack.alerts());

    // Ticket: JobsFailing, evaluated by Prometheus from the app's counters, by e-mail through SMTP. The pushed
    // alerts are pushed again meanwhile, as Prometheus re-sends what still fires (else they would resolve).
    let mailed = eventually(Duration::from_secs(420), Duration::from_secs(3), || {
        push(&stack, &burning_checkout());
        receivers.smtp.mails().into_iter().find(|m| {
            m.header("subject")
                .is_some_and(|s| s.contains("JobsFailing"))
        })
    });
    let firing_now = query::prom_firing_alerts(&stack.prometheus_url()).unwrap_or_default();
    let mail = mailed.unwrap_or_else(|| {
        panic!(
            "JobsFailing not e-mailed within {:?}; Prometheus has firing {firing_now:?}; mails {:?}",
            start.elapsed(),
            subjects(&receivers.smtp.mails())
        )
    });
    eprintln!(
        "page after {paged_at:?}, JobsFailing e-mailed after {:?}",
        start.elapsed()
    );
    check_mail(&mail);

    // Heartbeat: delivered, and repeated after its repeat interval (5 min), while the page keeps firing
    // (pushed again as Prometheus would) and is not repeated.
    let first_beat = eventually(Duration::from_secs(60), Duration::from_secs(2), || {
        receivers.heartbeat.alerts().first().cloned()
    })
    .expect("the Watchdog reaches the heartbeat receiver");
    assert_eq!(first_beat["receiver"], "heartbeat");
    assert_eq!(first_beat["alerts"][0]["labels"]["alertname"], "Watchdog");
    let repeated = eventually(Duration::from_secs(420), Duration::from_secs(5), || {
        push(&stack, &burning_checkout());
        (receivers.heartbeat.alerts().len() >= 2).then_some(())
    });
    assert!(
        repeated.is_some(),
        "the heartbeat was not repeated within 7 minutes: {} notifications",
        receivers.heartbeat.alerts().len()
    );
    drop(load);
    eprintln!("heartbeat repeated after {:?}", start.elapsed());

    // One notification per symptom: every (receiver, alert, service) firing exactly once over the whole run.
    let mut counts: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
    for key in firing(&receivers.page_webhook.alerts()) {
        *counts.entry(key).or_default() += 1;
    }
    for (key, n) in &counts {
        assert_eq!(*n, 1, "{key:?} notified {n} times");
    }
    let mails = subjects(&receivers.smtp.mails());
    let jobs_failing = mails.iter().filter(|s| s.contains("JobsFailing")).count();
    assert_eq!(
        jobs_failing, 1,
        "JobsFailing e-mailed {jobs_failing} times: {mails:?}"
    );
    let distinct: BTreeSet<&String> = mails.iter().collect();
    assert_eq!(
        distinct.len(),
        mails.len(),
        "an e-mail was repeated: {mails:?}"
    );
    assert!(
        !mails
            .iter()
            .any(|s| s.contains("checkout") || s.contains("HighErrorRate")),
        "the page did not mute its tickets: {mails:?}"
    );
    assert_eq!(
        receivers.slack.alerts().len(),
        1,
        "Slack got the page once: {:?}",
        receivers.slack.alerts()
    );

    each_app_metric_is_stored_under_one_job(&stack);
}

/// Slack's incoming-webhook payload: one attachment, the severity's colour, the title with status and name,
/// the text with the annotations' links.
fn check_slack(payloads: &[Value]) {
    let p = payloads.first().expect("a Slack payload");
    let a = &p["attachments"][0];
    assert_eq!(a["color"], "#FF0000", "critical is red: {p}");
    let title = a["title"].as_str().unwrap_or("");
    assert!(
        title.contains("[FIRING:1] SLOAvailabilityBudgetBurn (critical)"),
        "{title}"
    );
    assert!(
        a["title_link"]
            .as_str()
            .is_some_and(|l| l.starts_with("http://localhost:3000/d/")),
        "{p}"
    );
    let text = a["text"].as_str().unwrap_or("");
    assert!(
        text.contains("Runbook: https://example.invalid/runbooks#sloavailabilitybudgetburn"),
        "{text}"
    );
    assert!(!text.contains("{{"), "unexpanded template: {text}");
    assert_eq!(p["username"], "Image2Model Alert");
}

/// The ticket e-mail: to the on-call address, the severity and name in the subject, the rule's expanded
/// summary and absolute links in the text.
fn check_mail(mail: &Mail) {
    assert_eq!(mail.to, vec!["oncall@example.org".to_owned()]);
    let subject = mail.header("subject").unwrap_or_default();
    assert!(
        subject.starts_with("[error] JobsFailing: image2model"),
        "{subject}"
    );
    let text = mail.decoded();
    let rule = stack_tests::grafana::load_rules(&stack_tests::grafana::rules_dir())
        .expect("rules")
        .into_iter()
        .find(|r| r.name == "JobsFailing")
        .expect("JobsFailing");
    let runbook = rule.annotations["runbook_url"].clone();
    let dashboard = rule.annotations["dashboard_url"].replace("{{ $labels.job }}", "image2model");
    for needle in [
        "of model generations fail",
        runbook.as_str(),
        dashboard.as_str(),
    ] {
        assert!(text.contains(needle), "the e-mail lacks {needle}:\n{text}");
    }
    assert!(!text.contains("{{"), "unexpanded template in the e-mail");
}

/// No metric name of the app is stored under two scrape jobs (the collector's exporter and the admin
/// listener): each series has one path into Prometheus; and none carries a per-start label.
fn each_app_metric_is_stored_under_one_job(stack: &Stack) {
    let base = stack.prometheus_url();
    let app_metrics = query::prom_query(
        &base,
        r#"count by (__name__) ({job="image2model", __name__=~".+"})"#,
    )
    .expect("query");
    assert!(
        app_metrics.len() >= 10,
        "too few app metrics to say anything: {}",
        app_metrics.len()
    );
    // Stable identities: no series carries a label that changes at every start of the app or the collector.
    for per_start in [
        r#"{job="image2model", instance=~"[0-9a-f]{8}-[0-9a-f]{4}-.+"}"#,
        r#"{job="image2model", service_instance_id!=""}"#,
        r#"{job="image2model", process_pid!=""}"#,
        r#"{collector_instance_id!=""}"#,
    ] {
        let found = query::prom_query(&base, &format!("count({per_start})")).expect("query");
        assert!(
            found.is_empty(),
            "series with a per-start label: {per_start}: {found:?}"
        );
    }
    let twice = query::prom_query(
        &base,
        r#"count by (__name__) (group by (__name__, job) ({job=~"image2model.*", __name__!~"up|scrape_.+"})) > 1"#,
    )
    .expect("query");
    assert!(twice.is_empty(), "stored under two jobs: {twice:?}");
}
