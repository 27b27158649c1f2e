//! Client of a FAL.AI-style queue API: submit, poll the status, fetch the result and the model
//! file, each call through `otelbricks_http::HttpClientMiddleware`, with retries and exponential
//! backoff with jitter on 429, 5xx and transport errors, honouring `Retry-After`.
//!
//! The provider is not trusted further than it must be:
//! - the API key (`Authorization: Key ...`, never logged) goes only to the provider's own
//!   origin (scheme, host, port of the base URL), never to a host a result names;
//! - a model URL on another origin is downloaded only over https from an allowed host
//!   (`IMAGE2MODEL_DOWNLOAD_HOSTS`), never from a private, loopback or link-local address (the
//!   name is resolved by a resolver that drops them, so DNS cannot point it inside either),
//!   unless `IMAGE2MODEL_DOWNLOAD_ALLOW_PRIVATE` says so for development;
//! - redirects: at most 3, API calls only within the provider's origin, downloads only to
//!   targets the same rules allow;
//! - bodies are read up to a bound: [`MAX_JSON_BYTES`] for API answers, `max_model_bytes` for
//!   the model;
//! - every header value is parsed without panicking (`Retry-After: 1e20` is capped, not a
//!   panic);
//! - its error texts stay in logs: [`ProviderError::public_message`] is what a client sees.
//!
//! Outgoing trace context: each call is a child of the job's span, whose parent is the server
//! span of the request that created the job (its own context, not the client's headers), and
//! jobs store only `traceparent`, so a client's `tracestate` never reaches the provider.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, RequestBuilder};
use tracing::Instrument as _;

use crate::limits::bounded;
use crate::metrics::Metrics;
use crate::rng::Rng;

mod error;
mod policy;
mod transport;
mod wire;

pub use error::ProviderError;
pub use policy::is_public;
use policy::{DownloadPolicy, PublicOnlyResolver, same_origin};
use transport::{
    CA_HINT, error_chain, host_port, redirect_refused, tls_failure, transport_class,
    transport_reason,
};
use wire::read_limited;
pub use wire::{base64, parse_retry_after};

/// Largest API answer (submit, status, result) read from the provider.
pub const MAX_JSON_BYTES: usize = 1024 * 1024;

/// Most redirects followed by one call.
pub const MAX_REDIRECTS: usize = 3;

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
    /// Hosts a model on another origin than the provider's may be downloaded from: `host` or
    /// `*.domain`.
    pub download_hosts: Vec<String>,
    /// Allows http:// and private or loopback addresses for those hosts (development, tests).
    pub download_allow_private: bool,
    /// Largest model file accepted.
    pub max_model_bytes: usize,
}

impl ProviderConfig {
    /// Settings for `base_url` with the defaults of `image2model serve`.
    pub fn new(base_url: impl Into<String>) -> Self {
        let l = crate::limits::LimitsConfig::default();
        ProviderConfig {
            base_url: base_url.into(),
            model: "fal-ai/trellis".into(),
            api_key: None,
            poll_interval: Duration::from_millis(500),
            request_timeout: Duration::from_secs(30),
            max_retries: 5,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            ca_file: None,
            download_hosts: l.download_hosts,
            download_allow_private: l.download_allow_private,
            max_model_bytes: l.max_model_bytes,
        }
    }
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
            .field("download_hosts", &self.download_hosts)
            .field("download_allow_private", &self.download_allow_private)
            .finish_non_exhaustive()
    }
}

/// The provider client.
#[derive(Clone)]
pub struct ProviderClient {
    http: ClientWithMiddleware,
    download: ClientWithMiddleware,
    origin: Url,
    policy: Arc<DownloadPolicy>,
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

enum Attempt {
    Done(reqwest::Response),
    Retry {
        reason: String,
        class: String,
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
        let url = Url::parse(&cfg.base_url).map_err(|e| {
            ProviderError::Config(format!("provider URL {:?} is not a URL: {e}", cfg.base_url))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ProviderError::Config(format!(
                "provider URL {:?}: expected http://host[:port][/path] or https://...",
                cfg.base_url
            )));
        }
        let mut certs = Vec::new();
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                ProviderError::Config(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ProviderError::Config(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(ProviderError::Config(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        let base = |redirects: reqwest::redirect::Policy| {
            let b = reqwest::Client::builder()
                .timeout(cfg.request_timeout)
                .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
                .tls_version_min(reqwest::tls::Version::TLS_1_2)
                .redirect(redirects);
            if certs.is_empty() {
                b
            } else {
                b.tls_certs_merge(certs.clone())
            }
        };
        let origin = url.clone();
        let api_redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS || !same_origin(attempt.url(), &origin) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let inner = base(api_redirects)
            .build()
            .map_err(|e| ProviderError::Config(error_chain(&e)))?;
        let policy = Arc::new(DownloadPolicy::new(
            &cfg.download_hosts,
            cfg.download_allow_private,
        ));
        let p = policy.clone();
        let download_redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match p.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(format!("redirect refused: {why}")),
            }
        });
        let mut download = base(download_redirects);
        if !cfg.download_allow_private {
            download = download.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        let download = download
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
            http: ClientBuilder::new(inner).with(middleware.clone()).build(),
            download: ClientBuilder::new(download).with(middleware).build(),
            origin: url,
            policy,
            cfg,
            auth,
            metrics,
            rng: std::sync::Arc::new(Rng::from_entropy()),
        })
    }

    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        let s = format!(
            "{}/{}",
            self.cfg.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        Url::parse(&s).map_err(|e| ProviderError::Garbage {
            endpoint: "result",
            reason: format!("bad URL {}: {e}", bounded(&s, 200)),
        })
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

    /// One call with retries. `build` makes a fresh request per attempt; the key is added
    /// only when `url` is on the provider's origin.
    async fn call(
        &self,
        endpoint: &'static str,
        client: &ClientWithMiddleware,
        url: &Url,
        build: impl Fn(&ClientWithMiddleware, &Url) -> RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let span = tracing::info_span!("fal_api_call", otel.name = %format!("fal {endpoint}"), fal.endpoint = endpoint);
        let auth = self
            .auth
            .as_ref()
            .filter(|_| same_origin(url, &self.origin));
        async {
            let mut attempt = 0u32;
            loop {
                let mut req = build(client, url);
                if let Some(a) = auth {
                    req = req.header(AUTHORIZATION, a.clone());
                }
                let start = Instant::now();
                let outcome = match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        self.metrics.fal_call(endpoint, status.as_str(), start.elapsed().as_secs_f64());
                        if status == StatusCode::TOO_MANY_REQUESTS {
                            self.metrics.fal_rate_limited();
                            let after = resp.headers().get(RETRY_AFTER).and_then(parse_retry_after);
                            Attempt::Retry { reason: "429 Too Many Requests".into(), class: "HTTP 429".into(), after }
                        } else if status.is_server_error() {
                            Attempt::Retry { reason: format!("HTTP {status}"), class: format!("HTTP {}", status.as_u16()), after: None }
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
                        if let Some(why) = redirect_refused(&e) {
                            return Err(ProviderError::DownloadRefused { url: bounded(url.as_str(), 200).into_owned(), reason: why });
                        }
                        Attempt::Retry { reason: transport_reason(&e), class: transport_class(&e).into(), after: None }
                    }
                };
                match outcome {
                    Attempt::Done(resp) => return Ok(resp),
                    Attempt::Retry { reason, class, after } => {
                        if attempt >= self.cfg.max_retries {
                            tracing::warn!(endpoint, attempts = attempt + 1, error = %reason, "provider call gave up");
                            return Err(ProviderError::RetriesExhausted { endpoint, attempts: attempt + 1, last: reason, class });
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
        let body = read_limited(endpoint, resp, MAX_JSON_BYTES).await?;
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
                detail: bounded(&detail, 200).into_owned(),
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
        let submit_url = self.url(&self.cfg.model)?;
        let body = body.to_string();
        let resp = self
            .call("submit", &self.http, &submit_url, |c, u| {
                c.post(u.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        let v = Self::json("submit", resp).await?;
        let request_id = v
            .get("request_id")
            .and_then(|r| r.as_str())
            .filter(|r| {
                !r.is_empty()
                    && r.len() <= 128
                    && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            .ok_or_else(|| ProviderError::Garbage {
                endpoint: "submit",
                reason: "no valid request_id".into(),
            })?
            .to_owned();
        tracing::info!(fal.request_id = %request_id, "generation submitted");

        let status_url = self.url(&format!("{}/requests/{request_id}/status", self.cfg.model))?;
        loop {
            let resp = self
                .call("status", &self.http, &status_url, |c, u| c.get(u.clone()))
                .await?;
            let v = Self::json("status", resp).await?;
            match v.get("status").and_then(|s| s.as_str()) {
                Some("COMPLETED") => break,
                Some("IN_QUEUE") | Some("IN_PROGRESS") => {}
                Some("FAILED") | Some("ERROR") => {
                    return Err(ProviderError::GenerationFailed(
                        bounded(
                            &v.get("error")
                                .map(|e| e.to_string())
                                .unwrap_or_else(|| "provider reported failure".into()),
                            200,
                        )
                        .into_owned(),
                    ));
                }
                other => {
                    return Err(ProviderError::Garbage {
                        endpoint: "status",
                        reason: format!("unknown status {:?}", other.map(|o| bounded(o, 64))),
                    });
                }
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }

        let result_url = self.url(&format!("{}/requests/{request_id}", self.cfg.model))?;
        let resp = self
            .call("result", &self.http, &result_url, |c, u| c.get(u.clone()))
            .await?;
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
        self.download_model(file_url).await
    }

    /// Downloads the model at `file_url` (absolute, or a path on the provider's origin) if the
    /// rules allow it; checks its size and that it is a GLB.
    async fn download_model(&self, file_url: &str) -> Result<Vec<u8>, ProviderError> {
        let refused = |reason: String| ProviderError::DownloadRefused {
            url: bounded(file_url, 200).into_owned(),
            reason,
        };
        let url = if file_url.starts_with("http://") || file_url.starts_with("https://") {
            Url::parse(file_url).map_err(|e| refused(format!("not a URL: {e}")))?
        } else if file_url.starts_with("//") || file_url.contains("://") {
            return Err(refused("not an http(s) URL or a path".into()));
        } else {
            self.url(file_url)?
        };
        let client = if same_origin(&url, &self.origin) {
            &self.http
        } else {
            self.policy.check(&url).map_err(refused)?;
            &self.download
        };
        let resp = self
            .call("download", client, &url, |c, u| c.get(u.clone()))
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ProviderError::Rejected {
                endpoint: "download",
                status: status.as_u16(),
                detail: "model file unavailable".into(),
            });
        }
        let bytes = read_limited("download", resp, self.cfg.max_model_bytes).await?;
        if !crate::files::is_valid_glb(&bytes) {
            return Err(ProviderError::Garbage {
                endpoint: "download",
                reason: "the model file is not a valid GLB".into(),
            });
        }
        Ok(bytes)
    }
}
