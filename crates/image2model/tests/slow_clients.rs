//! Slow clients against the real server on loopback: a client that dribbles its headers or
//! idles is cut off at the header timeout; an upload stopped short is cut at the body deadline
//! and leaves nothing behind; an upload goes to disk as it arrives; connections over the limit
//! get 503 at once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use image2model::app::AppOptions;
use image2model::sim::SimConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit`); returns what it sent and when
/// it closed.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, Some(start.elapsed())),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, None),
        }
    }
}

#[tokio::test]
async fn dribbled_headers_and_idle_connections_are_closed_at_the_header_timeout() {
    let t = start_cfg(
        |c| c.limits.header_timeout = Duration::from_millis(300),
        SimConfig::fast(10),
        AppOptions::default(),
    )
    .await;
    let (addr, _stop) = serve_app(&t.app).await;

    // Headers that never end.
    let mut dribbler = TcpStream::connect(addr).await.expect("connect");
    dribbler
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    let (_, closed) = read_until_closed(&mut dribbler, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "a dribbling client is cut off");

    // A keep-alive connection that served a request, then idles.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "served first"
    );
    assert!(closed.is_some(), "an idle keep-alive connection is closed");
    t.app.shutdown().await;
}

/// A multipart upload of a PNG padded to `total` bytes of file content.
fn upload_head_and_body(total: usize) -> (String, Vec<u8>) {
    let boundary = "slowBoundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(PNG);
    body.resize(body.len() + total - PNG.len(), 0);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let head = format!(
        "POST /api/v1/upload HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; \
         boundary={boundary}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    (head, body)
}

fn part_files(dir: &std::path::Path) -> Vec<(String, u64)> {
    std::fs::read_dir(dir.join("uploads"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().map(|m| m.len()).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_upload_streams_to_disk_and_one_stopped_short_is_cut_at_the_body_deadline() {
    let t = start_cfg(
        |c| {
            c.max_upload_bytes = 4 * 1024 * 1024;
            c.limits.body_timeout = Duration::from_secs(2);
        },
        SimConfig::fast(10),
        AppOptions::default(),
    )
    .await;
    let (addr, _stop) = serve_app(&t.app).await;
    let (head, body) = upload_head_and_body(3 * 1024 * 1024);
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("head");
    // All but the file's last byte (and the closing boundary).
    let trailer = "\r\n--slowBoundary--\r\n".len();
    s.write_all(&body[..body.len() - trailer - 1])
        .await
        .expect("body");
    let on_disk = eventually(Duration::from_secs(5), async || {
        part_files(t.dir.path())
            .into_iter()
            .find(|(_, len)| *len >= 2 * 1024 * 1024)
    })
    .await;
    assert!(
        on_disk.is_some(),
        "the upload is written to disk as it arrives, not held in memory: {:?}",
        part_files(t.dir.path())
    );
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(8)).await;
    assert!(closed.is_some(), "the stalled upload is cut off");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    let cleaned = eventually(Duration::from_secs(5), async || {
        part_files(t.dir.path()).is_empty().then_some(())
    })
    .await;
    assert!(cleaned.is_some(), "no partial file left behind");
    t.app.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_limit_get_503_at_once_and_the_slots_come_back() {
    let t = start_cfg(
        |c| {
            c.limits.max_connections = 4;
            c.limits.header_timeout = Duration::from_millis(500);
        },
        SimConfig::fast(10),
        AppOptions::default(),
    )
    .await;
    let (addr, _stop) = serve_app(&t.app).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // No wait needed: the kernel's accept queue is first in, first out, and the server accepts one
    // connection at a time, so the four take the slots before the fifth is looked at.
    let mut extra = TcpStream::connect(addr).await.expect("connect");
    let (answer, closed) = read_until_closed(&mut extra, Duration::from_secs(2)).await;
    assert!(closed.is_some(), "closed at once");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    // The idle ones time out; then /ready answers again.
    let ready = eventually(Duration::from_secs(5), async || {
        let r = reqwest::get(format!("http://{addr}/ready")).await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "slots come back when idle connections close"
    );
    drop(idle);
    t.app.shutdown().await;
}
