//! Client of a FAL.AI-style queue API: submit, poll the status, fetch the result and the model
//! file, each call through `otelbricks_http::HttpClientMiddleware`, with retries and exponential
//! backoff with jitter on 429, 5xx and transport errors, honouring `Retry-After`.
//!
//! The API key is sent as `Authorization: Key ...` and never logged (the middleware records no
//! headers, and this module never formats it).

use std::error::Error as _;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, RequestBuilder};
use tracing::Instrument as _;

use crate::metrics::Metrics;
use crate::rng::Rng;

/// Provider client settings.
#[derive(Clone)]
pub struct ProviderConfig {
    /// Base URL, e.g. `https://queue.fal.run` or the simulator's `http://127.0.0.1:port`.
    pub base_url: String,
    /// Model path, e.g. `fal-ai/trellis`.
    pub model: String,
    /// API key.
    pub api_key: Option<String>,
    /// Time between status polls.
    pub poll_interval: Duration,
    /// Timeout of one HTTP call.
    pub request_timeout: Duration,
    /// Retries of one call after the first attempt.
    pub max_retries: u32,
    /// First backoff delay.
    pub backoff_base: Duration,
    /// Longest backoff delay (also caps `Retry-After`).
    pub backoff_max: Duration,
    /// PEM file of extra CA certificates trusted for an `https://` provider, on top of the
    /// system's roots (a private CA, a TLS-intercepting proxy, a test server).
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("poll_interval", &self.poll_interval)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// Why a generation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered an error that retrying does not fix.
    #[error("provider {endpoint} call answered {status}: {detail}")]
    Rejected {
        /// `submit`, `status`, `result`, `download`.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The provider's message.
        detail: String,
    },
    /// Retries ran out on 429, 5xx or transport errors.
    #[error("provider {endpoint} call failed after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// The endpoint.
        endpoint: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The answer is not what the API promises.
    #[error("provider {endpoint} answered garbage: {reason}")]
    Garbage {
        /// The endpoint.
        endpoint: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The TLS handshake failed for a reason retrying does not fix (certificate not trusted,
    /// expired, for another name; no common protocol version): not retried.
    #[error("provider {endpoint} call: TLS handshake with {host} failed: {reason}{hint}")]
    Tls {
        /// The endpoint.
        endpoint: &'static str,
        /// `host:port` of the provider.
        host: String,
        /// What rustls reported, e.g. `invalid peer certificate: UnknownIssuer`.
        reason: String,
        /// How to trust a private CA, when the certificate's issuer is unknown.
        hint: &'static str,
    },
    /// The provider reports the generation failed.
    #[error("generation failed: {0}")]
    GenerationFailed(String),
    /// The client cannot be built or the configuration is invalid.
    #[error("provider client: {0}")]
    Config(String),
}

/// The provider client.
#[derive(Clone)]
pub struct ProviderClient {
    http: ClientWithMiddleware,
    cfg: ProviderConfig,
    auth: Option<HeaderValue>,
    metrics: Metrics,
    rng: std::sync::Arc<Rng>,
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderClient")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// A tiny standard base64 encoder (for `data:` URIs).
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

enum Attempt {
    Done(reqwest::Response),
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

impl ProviderClient {
    /// A client; `middleware` instruments each attempt (pass `HttpClientMiddleware::new()`).
    pub fn new(
        cfg: ProviderConfig,
        middleware: otelbricks_http::HttpClientMiddleware,
        metrics: Metrics,
    ) -> Result<Self, ProviderError> {
        let url = reqwest::Url::parse(&cfg.base_url).map_err(|e| {
            ProviderError::Config(format!("provider URL {:?} is not a URL: {e}", cfg.base_url))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ProviderError::Config(format!(
                "provider URL {:?}: expected http://host[:port][/path] or https://...",
                cfg.base_url
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            .tls_version_min(reqwest::tls::Version::TLS_1_2);
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                ProviderError::Config(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ProviderError::Config(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(ProviderError::Config(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let inner = builder
            .build()
            .map_err(|e| ProviderError::Config(error_chain(&e)))?;
        let auth = match &cfg.api_key {
            Some(k) => {
                let mut v = HeaderValue::from_str(&format!("Key {k}")).map_err(|_| {
                    ProviderError::Config("the API key is not a valid header value".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(ProviderClient {
            http: ClientBuilder::new(inner).with(middleware).build(),
            cfg,
            auth,
            metrics,
            rng: std::sync::Arc::new(Rng::from_entropy()),
        })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.cfg.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .cfg
            .backoff_base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cfg.backoff_max);
        // "Equal jitter": half fixed, half random.
        exp.mul_f64(0.5 + 0.5 * self.rng.unit())
    }

    /// One call with retries. `build` makes a fresh request per attempt.
    async fn call(
        &self,
        endpoint: &'static str,
        build: impl Fn(&ClientWithMiddleware) -> RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let span = tracing::info_span!("fal_api_call", otel.name = %format!("fal {endpoint}"), fal.endpoint = endpoint);
        async {
            let mut attempt = 0u32;
            loop {
                let mut req = build(&self.http);
                if let Some(a) = &self.auth {
                    req = req.header(AUTHORIZATION, a.clone());
                }
                let start = Instant::now();
                let outcome = match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        self.metrics.fal_call(endpoint, status.as_str(), start.elapsed().as_secs_f64());
                        if status == StatusCode::TOO_MANY_REQUESTS {
                            self.metrics.fal_rate_limited();
                            let after = resp
                                .headers()
                                .get(RETRY_AFTER)
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.trim().parse::<f64>().ok())
                                .filter(|s| s.is_finite() && *s >= 0.0)
                                .map(Duration::from_secs_f64);
                            Attempt::Retry { reason: "429 Too Many Requests".into(), after }
                        } else if status.is_server_error() {
                            Attempt::Retry { reason: format!("HTTP {status}"), after: None }
                        } else {
                            Attempt::Done(resp)
                        }
                    }
                    Err(e) => {
                        self.metrics.fal_call(endpoint, "error", start.elapsed().as_secs_f64());
                        if let Some(tls) = tls_failure(&e) {
                            let err = ProviderError::Tls {
                                endpoint,
                                host: e.url().map(host_port).unwrap_or_default(),
                                hint: if tls.unknown_issuer { CA_HINT } else { "" },
                                reason: tls.reason,
                            };
                            tracing::warn!(endpoint, error = %err, "provider call refused by TLS; not retried");
                            return Err(err);
                        }
                        Attempt::Retry { reason: transport_reason(&e), after: None }
                    }
                };
                match outcome {
                    Attempt::Done(resp) => return Ok(resp),
                    Attempt::Retry { reason, after } => {
                        if attempt >= self.cfg.max_retries {
                            tracing::warn!(endpoint, attempts = attempt + 1, error = %reason, "provider call gave up");
                            return Err(ProviderError::RetriesExhausted { endpoint, attempts: attempt + 1, last: reason });
                        }
                        let delay = after
                            .map(|d| d.min(self.cfg.backoff_max))
                            .unwrap_or_else(|| self.backoff(attempt));
                        tracing::info!(endpoint, attempt = attempt + 1, error = %reason, delay_s = delay.as_secs_f64(), "provider call will be retried");
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn json(
        endpoint: &'static str,
        resp: reqwest::Response,
    ) -> Result<serde_json::Value, ProviderError> {
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ProviderError::Garbage {
            endpoint,
            reason: format!("cannot read body: {e}"),
        })?;
        let value: Result<serde_json::Value, _> = serde_json::from_slice(&body);
        if !status.is_success() {
            let detail = value
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
                });
            return Err(ProviderError::Rejected {
                endpoint,
                status: status.as_u16(),
                detail,
            });
        }
        value.map_err(|e| ProviderError::Garbage {
            endpoint,
            reason: format!("body is not JSON: {e}"),
        })
    }

    /// Generates a model from `image` (bytes of MIME type `mime`); returns the GLB bytes.
    /// Unbounded in time by itself: the caller applies the job deadline.
    pub async fn generate(
        &self,
        image: &[u8],
        mime: &str,
        options: &serde_json::Value,
    ) -> Result<Vec<u8>, ProviderError> {
        let mut body = serde_json::json!({
            "image_url": format!("data:{mime};base64,{}", base64(image)),
        });
        if let (Some(o), Some(b)) = (options.as_object(), body.as_object_mut()) {
            for (k, v) in o {
                if k != "image_url" {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        let submit_url = self.url(&self.cfg.model);
        let body = body.to_string();
        let resp = self
            .call("submit", |c| {
                c.post(&submit_url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        let v = Self::json("submit", resp).await?;
        let request_id = v
            .get("request_id")
            .and_then(|r| r.as_str())
            .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .ok_or_else(|| ProviderError::Garbage {
                endpoint: "submit",
                reason: "no valid request_id".into(),
            })?
            .to_owned();
        tracing::info!(fal.request_id = %request_id, "generation submitted");

        let status_url = self.url(&format!("{}/requests/{request_id}/status", self.cfg.model));
        loop {
            let resp = self.call("status", |c| c.get(&status_url)).await?;
            let v = Self::json("status", resp).await?;
            match v.get("status").and_then(|s| s.as_str()) {
                Some("COMPLETED") => break,
                Some("IN_QUEUE") | Some("IN_PROGRESS") => {}
                Some("FAILED") | Some("ERROR") => {
                    return Err(ProviderError::GenerationFailed(
                        v.get("error")
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| "provider reported failure".into()),
                    ));
                }
                other => {
                    return Err(ProviderError::Garbage {
                        endpoint: "status",
                        reason: format!("unknown status {other:?}"),
                    });
                }
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }

        let result_url = self.url(&format!("{}/requests/{request_id}", self.cfg.model));
        let resp = self.call("result", |c| c.get(&result_url)).await?;
        let v = match Self::json("result", resp).await {
            Err(ProviderError::Rejected {
                status: 422,
                detail,
                ..
            }) => {
                return Err(ProviderError::GenerationFailed(detail));
            }
            other => other?,
        };
        let file_url = v
            .pointer("/model_mesh/url")
            .and_then(|u| u.as_str())
            .ok_or_else(|| ProviderError::Garbage {
                endpoint: "result",
                reason: "no model_mesh.url".into(),
            })?;
        let file_url = if file_url.starts_with("http://") || file_url.starts_with("https://") {
            file_url.to_owned()
        } else {
            self.url(file_url)
        };
        let resp = self.call("download", |c| c.get(&file_url)).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ProviderError::Rejected {
                endpoint: "download",
                status: status.as_u16(),
                detail: "model file unavailable".into(),
            });
        }
        let bytes = resp.bytes().await.map_err(|e| ProviderError::Garbage {
            endpoint: "download",
            reason: format!("cannot read model: {e}"),
        })?;
        if !crate::files::is_valid_glb(&bytes) {
            return Err(ProviderError::Garbage {
                endpoint: "download",
                reason: "the model file is not a valid GLB".into(),
            });
        }
        Ok(bytes.to_vec())
    }
}

const CA_HINT: &str =
    " (to trust a private CA, put its PEM certificate in IMAGE2MODEL_PROVIDER_CA_FILE)";

/// An error and its sources, `a: b: c`; `io::Error`s also show what they wrap.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

fn transport_reason(e: &reqwest_middleware::Error) -> String {
    let detail = match e {
        reqwest_middleware::Error::Reqwest(r) => {
            r.source().map(error_chain).unwrap_or_else(|| r.to_string())
        }
        other => error_chain(other),
    };
    match e {
        reqwest_middleware::Error::Reqwest(r) if r.is_timeout() => {
            format!("request timed out ({detail})")
        }
        reqwest_middleware::Error::Reqwest(r) if r.is_connect() => {
            format!("connection failed: {detail}")
        }
        _ => format!("transport error: {detail}"),
    }
}

fn host_port(u: &reqwest::Url) -> String {
    match (u.host_str(), u.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => u.to_string(),
    }
}

struct TlsFailure {
    reason: String,
    /// The certificate chains to no trusted root (a private CA would fix it).
    unknown_issuer: bool,
}

/// The rustls error behind a failed call, if the TLS handshake failed. rustls errors arrive
/// wrapped in (nested) `io::Error`s, whose `source()` skips the wrapped error: look inside.
fn tls_failure(e: &reqwest_middleware::Error) -> Option<TlsFailure> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = match e {
        reqwest_middleware::Error::Reqwest(r) => Some(r),
        reqwest_middleware::Error::Middleware(_) => None,
    };
    while let Some(err) = cur {
        let mut candidate = err;
        loop {
            if let Some(r) = candidate.downcast_ref::<rustls::Error>() {
                return Some(TlsFailure {
                    reason: r.to_string(),
                    unknown_issuer: matches!(
                        r,
                        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
                    ),
                });
            }
            match candidate
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => candidate = inner,
                None => break,
            }
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
