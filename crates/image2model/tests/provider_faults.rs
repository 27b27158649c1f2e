//! A provider that fails: every fault ends as a failed job with its reason, never a stuck job.

mod common;

use std::time::{Duration, Instant};

use common::*;
use image2model::sim::{Fault, SimConfig};

async fn one_job_with(
    sim: SimConfig,
    tweak: impl FnOnce(&mut image2model::ServeConfig),
) -> serde_json::Value {
    let t = start_cfg(tweak, sim, Default::default()).await;
    let f = upload(&t.router).await;
    let job = create_job(&t.router, &f).await;
    let v = wait_job(&t.router, &job, Duration::from_secs(15)).await;
    let report = t.app.shutdown().await;
    assert!(report.requeued.is_empty());
    v
}

#[tokio::test]
async fn a_provider_answering_500_forever_fails_the_job_after_the_retries() {
    let sim = SimConfig {
        fault: Fault::Always500,
        ..SimConfig::fast(10)
    };
    let v = one_job_with(sim, |_| {}).await;
    assert_eq!(v["status"], "failed");
    let err = v["error"].as_str().expect("error");
    assert!(
        err.contains("after 4 attempts") && err.contains("500"),
        "{err}"
    );
}

#[tokio::test]
async fn a_provider_answering_garbage_fails_the_job_with_the_reason() {
    let sim = SimConfig {
        fault: Fault::Garbage,
        ..SimConfig::fast(10)
    };
    let v = one_job_with(sim, |_| {}).await;
    assert_eq!(v["status"], "failed");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("garbage")),
        "{v}"
    );
}

#[tokio::test]
async fn a_provider_that_never_answers_fails_the_job_at_its_deadline() {
    let sim = SimConfig {
        fault: Fault::Hang,
        ..SimConfig::fast(10)
    };
    let start = Instant::now();
    let v = one_job_with(sim, |c| {
        c.job_deadline = Duration::from_millis(700);
        c.provider_timeout = Duration::from_secs(5);
    })
    .await;
    assert_eq!(v["status"], "failed");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("deadline")),
        "{v}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_generation_the_provider_reports_failed_fails_the_job() {
    let sim = SimConfig {
        failure_rate: 1.0,
        ..SimConfig::fast(10)
    };
    let v = one_job_with(sim, |_| {}).await;
    assert_eq!(v["status"], "failed");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("generation failed")),
        "{v}"
    );
}

#[tokio::test]
async fn a_wrong_api_key_fails_the_job_and_the_right_one_succeeds() {
    let sim = SimConfig {
        api_key: Some("right-key".into()),
        ..SimConfig::fast(10)
    };
    let v = one_job_with(sim.clone(), |c| c.provider_key = Some("wrong-key".into())).await;
    assert_eq!(v["status"], "failed");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("401")),
        "{v}"
    );
    let v = one_job_with(sim, |c| c.provider_key = Some("right-key".into())).await;
    assert_eq!(v["status"], "succeeded", "{v}");
}

#[tokio::test]
async fn transient_errors_and_rate_limits_are_retried_until_the_job_succeeds() {
    let sim = SimConfig {
        error_rate: 0.3,
        rate_limit: 5.0,
        ..SimConfig::fast(20)
    };
    let t = start_cfg(
        |c| {
            c.workers = 2;
            c.poll_interval = Duration::from_millis(100);
            c.provider_max_retries = 200;
            c.retry_max = Duration::from_millis(100);
        },
        sim,
        Default::default(),
    )
    .await;
    let mut files = Vec::new();
    for _ in 0..4 {
        files.push(upload(&t.router).await);
    }
    let (batch, _) = create_batch(&t.router, &files).await;
    let v = wait_batch(&t.router, &batch, Duration::from_secs(20)).await;
    assert_eq!(v["counts"]["succeeded"], 4, "{v}");
    t.app.shutdown().await;
}
