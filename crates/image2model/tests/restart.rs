//! Restarts lose nothing: queued and running jobs are picked up by the next instance on the same
//! data directory, and every job finishes exactly once.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use image2model::app::AppOptions;
use image2model::config::ServeConfig;
use image2model::sim::SimConfig;
use image2model::store::{JobStatus, NewJob, Store};

#[tokio::test]
async fn a_restart_in_the_middle_of_a_batch_finishes_every_job_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = ServeConfig::for_tests(dir.path(), SimConfig::fast(400));
    cfg.workers = 2;

    // First instance: a batch of 6, stopped once some (not all) jobs are done.
    let (a, router) = start_with(cfg.clone(), AppOptions::default()).await;
    let mut files = Vec::new();
    for _ in 0..6 {
        files.push(upload(&router).await);
    }
    let (batch, jobs) = create_batch(&router, &files).await;
    wait_for(
        &router,
        &format!("/api/v1/batches/{batch}"),
        Duration::from_secs(10),
        |v| {
            v["counts"]["succeeded"].as_u64().unwrap_or(0) >= 1
                && v["counts"]["running"].as_u64().unwrap_or(0) >= 1
        },
    )
    .await;
    let first_done: Vec<String> = {
        let report = a.shutdown_with_grace(Duration::ZERO).await;
        assert!(!report.requeued.is_empty(), "a running job was requeued");
        let store = Store::open(&dir.path().join("image2model.sqlite3")).expect("db");
        assert_eq!(
            store.count(JobStatus::Running).await.expect("count"),
            0,
            "nothing left running"
        );
        let queued = store.count(JobStatus::Queued).await.expect("count");
        assert!(queued >= 1, "the batch was interrupted");
        // `completed_jobs` was moved with the app: read what finished from the database.
        let mut done = Vec::new();
        for j in &jobs {
            let job = store.job(j).await.ok().flatten();
            if job.is_some_and(|r| r.status.is_terminal()) {
                done.push(j.clone());
            }
        }
        done
    };
    assert!(!first_done.is_empty() && first_done.len() < jobs.len());

    // Second instance, same data directory: finishes the rest, and only the rest.
    let (b, router) = start_with(cfg, AppOptions::default()).await;
    let v = wait_batch(&router, &batch, Duration::from_secs(15)).await;
    assert_eq!(v["counts"]["succeeded"], 6, "{v}");
    // The worker records a job as completed right after the database says so.
    let rest = jobs.len() - first_done.len();
    eventually(Duration::from_secs(5), async || {
        (b.completed_jobs().len() >= rest).then_some(())
    })
    .await;
    let second_done: HashSet<String> = b.completed_jobs().into_iter().collect();
    let first_done: HashSet<String> = first_done.into_iter().collect();
    assert!(first_done.is_disjoint(&second_done), "a job finished twice");
    let all: HashSet<String> = first_done.union(&second_done).cloned().collect();
    assert_eq!(all, jobs.iter().cloned().collect::<HashSet<_>>());
    assert_eq!(
        b.completed_jobs().len(),
        second_done.len(),
        "no job finished twice in B"
    );
    for j in &jobs {
        let (status, _, body) = send(&router, get(&format!("/api/v1/models/{j}/download"))).await;
        assert_eq!(status, http::StatusCode::OK);
        assert!(image2model::files::is_valid_glb(&body));
    }
    b.shutdown().await;
}

/// The id of the job a "crashed" instance left running.
const CRASHED: &str = "0190b1e4-0000-7000-8000-00000000c4a5";

#[tokio::test]
async fn jobs_left_running_by_a_crash_are_requeued_and_run_on_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ServeConfig::for_tests(dir.path(), SimConfig::fast(20));
    // An instance that only stored an upload, then "crashed" with a job claimed.
    let (a, router) = start_with(cfg.clone(), AppOptions::default()).await;
    let file = upload(&router).await;
    a.shutdown().await;
    {
        let store = Store::open(&dir.path().join("image2model.sqlite3")).expect("db");
        store
            .create_jobs(
                None,
                serde_json::json!({}),
                vec![NewJob {
                    job_id: CRASHED.into(),
                    file_id: file,
                    trace_context: Vec::new(),
                    request_id: None,
                }],
            )
            .await
            .expect("insert");
        assert!(store.claim(CRASHED).await.expect("claim").is_some());
    }
    let (b, router) = start_with(cfg, AppOptions::default()).await;
    let v = wait_job(&router, CRASHED, Duration::from_secs(10)).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(
        v["attempts"], 2,
        "claimed once by the crashed run, once after the restart"
    );
    // The worker records the job as completed right after the database says so.
    eventually(Duration::from_secs(5), async || {
        (!b.completed_jobs().is_empty()).then_some(())
    })
    .await;
    assert_eq!(b.completed_jobs(), vec![CRASHED.to_owned()]);
    b.shutdown().await;
}
