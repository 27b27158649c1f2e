//! Requests of known outcome, sent from the test itself, and the tally of what came back.
//!
//! `image2model loadgen` draws its mix at random and reports totals only; accounting tests need to know, for
//! every request, its status and whether the server layer excludes its path. [`Traffic`] sends the calls of a
//! fixed [`Call`] mix (each one answers one status by construction), each with its own `X-Request-ID`, and
//! records every answer in a [`Tally`]. Connections are kept alive: a request that meets a server closing its
//! connection is not answered and not served, so the tally stays exact across a graceful stop.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::StackError;

/// A valid 1x1 RGBA PNG (signature, IHDR, one zlib-compressed IDAT row, IEND), built here: a body the
/// upload route accepts as an image.
pub fn tiny_png() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    // Width 1, height 1, bit depth 8, colour type 6 (RGBA), deflate, no filter method, no interlace.
    let ihdr = [0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0];
    // One scanline: filter byte 0 and one transparent pixel.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = std::io::Write::write_all(&mut z, &[0, 0, 0, 0, 0]);
    let idat = z.finish().unwrap_or_default();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// One request of the image2model API whose answer is known in advance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `POST /api/v1/upload` with a PNG: 201.
    Upload,
    /// `POST /api/v1/upload` with bytes that are no image: 415.
    NotAnImage,
    /// `POST /api/v1/models` with a truncated JSON body: 400.
    BadJson,
    /// `POST /api/v1/batches` with no file: 422 (validation).
    EmptyBatch,
    /// `GET /api/v1/jobs/{job_id}` of a job that does not exist: 404 on a matched route.
    UnknownJob,
    /// `GET` of a path no route matches: 404 (route `unmatched`).
    UnmatchedPath,
    /// `POST /api/v1/models` for an uploaded file: 202.
    CreateJob(String),
    /// `GET /api/v1/jobs/{job_id}`: 200.
    GetJob(String),
    /// `GET /api/v1/models/{job_id}/download`: 200, or 500 when the result file was removed from disk.
    Download(String),
    /// `GET /health`: excluded by the server layer (no span, metric or log line).
    Health,
    /// `GET /ready`: excluded by the server layer.
    Ready,
}

impl Call {
    /// The calls that make exactly one span, one request log line and one handler log line each, and no
    /// background work: 201, 415, 400, 422, 404 (matched), 404 (unmatched), and the excluded `/health`.
    pub fn single_span_mix() -> Vec<Call> {
        vec![
            Call::Upload,
            Call::UnknownJob,
            Call::BadJson,
            Call::Upload,
            Call::EmptyBatch,
            Call::NotAnImage,
            Call::UnmatchedPath,
            Call::Health,
        ]
    }

    /// Whether the server layer leaves this path out of every signal.
    pub fn excluded(&self) -> bool {
        matches!(self, Call::Health | Call::Ready)
    }

    fn request(
        &self,
        client: &reqwest::blocking::Client,
        base: &str,
    ) -> reqwest::blocking::RequestBuilder {
        let json = |path: &str, body: String| {
            client
                .post(format!("{base}{path}"))
                .header("content-type", "application/json")
                .body(body)
        };
        match self {
            Call::Upload => multipart(client, base, "image.png", &tiny_png()),
            Call::NotAnImage => multipart(client, base, "photo.png", b"this is not an image"),
            Call::BadJson => json("/api/v1/models", "{\"file_id\": ".into()),
            Call::EmptyBatch => json("/api/v1/batches", "{\"file_ids\": []}".into()),
            Call::UnknownJob => client.get(format!(
                "{base}/api/v1/jobs/00000000-0000-7000-8000-000000000000"
            )),
            Call::UnmatchedPath => client.get(format!("{base}/api/v1/no-such-route")),
            Call::CreateJob(file_id) => json(
                "/api/v1/models",
                serde_json::json!({ "file_id": file_id }).to_string(),
            ),
            Call::GetJob(id) => client.get(format!("{base}/api/v1/jobs/{id}")),
            Call::Download(id) => client.get(format!("{base}/api/v1/models/{id}/download")),
            Call::Health => client.get(format!("{base}/health")),
            Call::Ready => client.get(format!("{base}/ready")),
        }
    }
}

fn multipart(
    client: &reqwest::blocking::Client,
    base: &str,
    filename: &str,
    content: &[u8],
) -> reqwest::blocking::RequestBuilder {
    let boundary = "accountingboundary7f3a";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    client
        .post(format!("{base}/api/v1/upload"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
}

/// One answered request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The `X-Request-ID` it was sent with.
    pub request_id: String,
    /// Its HTTP status.
    pub status: u16,
    /// Whether its path is excluded from telemetry.
    pub excluded: bool,
    /// When the answer arrived.
    pub at: Instant,
}

/// Everything [`Traffic`] sent and got back.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Every answer, in arrival order.
    pub answers: Vec<Answer>,
    /// Requests that got no HTTP answer (refused, reset, timed out), with the last error.
    pub transport_errors: u64,
    /// The last transport error.
    pub last_error: String,
}

impl Tally {
    /// Answered requests on instrumented paths, per status.
    pub fn by_status(&self) -> BTreeMap<u16, u64> {
        let mut out = BTreeMap::new();
        for a in self.answers.iter().filter(|a| !a.excluded) {
            *out.entry(a.status).or_default() += 1;
        }
        out
    }

    /// Answered requests on instrumented paths.
    pub fn requests(&self) -> u64 {
        self.answers.iter().filter(|a| !a.excluded).count() as u64
    }

    /// Answered requests on excluded paths.
    pub fn excluded(&self) -> u64 {
        self.answers.iter().filter(|a| a.excluded).count() as u64
    }

    /// A one-line summary: `N requests (201=.. 404=..), E excluded, T transport errors`.
    pub fn summary(&self) -> String {
        let statuses: Vec<String> = self
            .by_status()
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect();
        format!(
            "{} requests ({}), {} on excluded paths, {} transport errors{}",
            self.requests(),
            statuses.join(" "),
            self.excluded(),
            self.transport_errors,
            if self.last_error.is_empty() {
                String::new()
            } else {
                format!(" (last: {})", self.last_error)
            }
        )
    }
}

/// Sends [`Call`]s to one image2model and tallies the answers; shareable between threads.
pub struct Traffic {
    client: reqwest::blocking::Client,
    base: String,
    prefix: String,
    seq: AtomicU64,
    tally: Mutex<Tally>,
}

impl Traffic {
    /// A sender to `base_url` (`http://127.0.0.1:<port>`); request ids are `<prefix>-<n>`.
    pub fn new(base_url: &str, prefix: &str) -> Result<Traffic, StackError> {
        let client = crate::http::client_with_timeout(Duration::from_secs(20))?;
        Ok(Traffic {
            client,
            base: base_url.trim_end_matches('/').to_string(),
            prefix: prefix.to_string(),
            seq: AtomicU64::new(0),
            tally: Mutex::new(Tally::default()),
        })
    }

    /// Sends one call; returns its status and body (`Err` with the reason when nothing was answered).
    pub fn send(&self, call: &Call) -> Result<(u16, Vec<u8>), String> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("{}-{n}", self.prefix);
        let result = call
            .request(&self.client, &self.base)
            .header("x-request-id", &request_id)
            .send()
            .and_then(|r| {
                let status = r.status().as_u16();
                r.bytes().map(|b| (status, b.to_vec()))
            });
        let mut tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok((status, body)) => {
                tally.answers.push(Answer {
                    request_id,
                    status,
                    excluded: call.excluded(),
                    at: Instant::now(),
                });
                Ok((status, body))
            }
            Err(e) => {
                tally.transport_errors += 1;
                tally.last_error = e.to_string();
                Err(e.to_string())
            }
        }
    }

    /// Sends `call` and parses the JSON answer; `Err` unless it answered `want`.
    pub fn send_json(&self, call: &Call, want: u16) -> Result<serde_json::Value, String> {
        let (status, body) = self.send(call)?;
        if status != want {
            return Err(format!(
                "{call:?} answered {status}, not {want}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{call:?}: {e}"))
    }

    /// Sends the calls of `mix` in turn from `threads` threads, about `rps` requests a second in all, for
    /// `duration`. Returns when every thread has finished its last request.
    pub fn run_for(&self, mix: &[Call], threads: usize, rps: f64, duration: Duration) {
        let end = Instant::now() + duration;
        self.run(mix, threads, rps, || Instant::now() >= end);
    }

    /// Like [`Traffic::run_for`], until `done()` says so.
    pub fn run(&self, mix: &[Call], threads: usize, rps: f64, done: impl Fn() -> bool + Sync) {
        let threads = threads.max(1);
        let period = Duration::from_secs_f64(threads as f64 / rps.max(0.1));
        let next = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let start = Instant::now();
                    let mut sent: u32 = 0;
                    while !done() {
                        // Pacing: this thread's k-th request goes out no earlier than k periods after start.
                        let due = start + period * sent;
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                            continue;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let _ = self.send(&mix[i % mix.len()]);
                        sent += 1;
                    }
                });
            }
        });
    }

    /// What was sent and answered so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, excluded: bool) -> Answer {
        Answer {
            request_id: String::new(),
            status,
            excluded,
            at: Instant::now(),
        }
    }

    #[test]
    fn the_tally_counts_instrumented_answers_per_status_and_excluded_ones_apart() {
        let t = Tally {
            answers: vec![
                answer(201, false),
                answer(404, false),
                answer(201, false),
                answer(200, true),
            ],
            transport_errors: 1,
            last_error: "refused".into(),
        };
        assert_eq!(t.by_status(), BTreeMap::from([(201, 2), (404, 1)]));
        assert_eq!((t.requests(), t.excluded()), (3, 1));
        assert_eq!(
            t.summary(),
            "3 requests (201=2 404=1), 1 on excluded paths, 1 transport errors (last: refused)"
        );
    }

    #[test]
    fn the_tiny_png_is_a_well_formed_png() {
        let png = tiny_png();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        assert!(
            png.ends_with(&[b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]),
            "IEND with its CRC"
        );
    }

    #[test]
    fn only_health_and_ready_are_excluded() {
        assert!(Call::Health.excluded() && Call::Ready.excluded());
        assert!(!Call::single_span_mix()[..7].iter().any(Call::excluded));
    }
}
