//! The provider as an attacker, played by a fake provider on loopback that lies: it names model
//! URLs on other hosts (the key must not follow, the download policy decides), redirects to
//! the admin listener, sends `Retry-After: 1e20`, bodies far too large and error bodies full of
//! secrets. (The trust edge for trace headers is in `telemetry.rs`, with the other captures.)

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::fake::{self, Fake};
use common::*;
use image2model::metrics::Metrics;
use image2model::provider::{ProviderClient, ProviderConfig, ProviderError, parse_retry_after};
use image2model::sim::SimConfig;

fn client(cfg: ProviderConfig) -> ProviderClient {
    let meter = opentelemetry_sdk::metrics::SdkMeterProvider::default();
    let meter = opentelemetry::metrics::MeterProvider::meter(&meter, "test");
    ProviderClient::new(
        cfg,
        otelbricks_http::HttpClientMiddleware::with_meter(&meter),
        Metrics::new(&meter),
    )
    .expect("client")
}

fn cfg(base: &Fake) -> ProviderConfig {
    ProviderConfig {
        api_key: Some("k-secret".into()),
        poll_interval: Duration::from_millis(5),
        request_timeout: Duration::from_secs(2),
        max_retries: 1,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        ..ProviderConfig::new(base.url())
    }
}

async fn generate(c: &ProviderClient) -> Result<Vec<u8>, ProviderError> {
    c.generate(PNG, "image/png", &serde_json::json!({})).await
}

fn glb(_: &Method, _: &str) -> Response {
    image2model::files::triangle_glb("x").into_response()
}

#[tokio::test]
async fn the_key_goes_only_to_the_provider_and_other_hosts_need_the_allow_list() {
    let other = fake::start(glb).await;
    let provider = fake::start(fake::provider(format!("{}/steal.glb", other.url()))).await;

    // Defaults: a loopback http URL on another origin is refused, nothing is sent there.
    let err = generate(&client(cfg(&provider)))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, ProviderError::DownloadRefused { .. }),
        "{err}"
    );
    assert!(other.seen().is_empty(), "no request to the other host");

    // Allowed for development: the file is fetched, without the key.
    let c = client(ProviderConfig {
        download_hosts: vec!["127.0.0.1".into()],
        download_allow_private: true,
        ..cfg(&provider)
    });
    let model = generate(&c).await.expect("downloaded");
    assert!(image2model::files::is_valid_glb(&model));
    let seen = other.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("authorization"), None, "the key stays home");
    let to_provider = provider.seen();
    assert!(
        to_provider
            .iter()
            .all(|s| s.header("authorization").as_deref() == Some("Key k-secret"))
    );
}

#[tokio::test]
async fn https_only_and_no_private_addresses_for_allowed_hosts_by_default() {
    for url in [
        "http://cdn.fal.media/x.glb",
        "https://127.0.0.1/x.glb",
        "https://10.0.0.8/x.glb",
        "https://[::1]/x.glb",
        "https://user:pw@v3.fal.media/x.glb",
        "file:///etc/passwd",
        "//evil.example/x.glb",
    ] {
        let provider = fake::start(fake::provider(url.into())).await;
        let c = client(ProviderConfig {
            download_hosts: vec![
                "*.fal.media".into(),
                "127.0.0.1".into(),
                "10.0.0.8".into(),
                "::1".into(),
            ],
            ..cfg(&provider)
        });
        let err = generate(&c).await.expect_err(url);
        assert!(
            matches!(err, ProviderError::DownloadRefused { .. }),
            "{url}: {err}"
        );
        assert_eq!(err.code(), "model_url_refused");
    }
}

#[tokio::test]
async fn a_redirect_to_a_host_not_allowed_is_not_followed() {
    let admin = fake::start(|_: &Method, _: &str| "secret metrics".into_response()).await;
    let target = format!("http://localhost:{}/metrics", admin.addr.port());
    let cdn = fake::start(move |_: &Method, _: &str| {
        (StatusCode::FOUND, [(header::LOCATION, target.clone())]).into_response()
    })
    .await;
    let provider = fake::start(fake::provider(format!("{}/x.glb", cdn.url()))).await;
    let c = client(ProviderConfig {
        download_hosts: vec!["127.0.0.1".into()],
        download_allow_private: true,
        ..cfg(&provider)
    });
    let err = generate(&c).await.expect_err("refused");
    assert!(
        matches!(err, ProviderError::DownloadRefused { .. }),
        "{err}"
    );
    assert_eq!(cdn.seen().len(), 1);
    assert!(admin.seen().is_empty(), "the redirect was not followed");
}

#[test]
fn retry_after_values_never_panic() {
    let v = |s: &str| parse_retry_after(&http::HeaderValue::from_str(s).expect("value"));
    assert_eq!(v("2"), Some(Duration::from_secs(2)));
    assert_eq!(v("0.5"), Some(Duration::from_millis(500)));
    assert_eq!(
        v("99999999999999999999999"),
        Some(Duration::from_secs(u64::MAX))
    );
    assert_eq!(v("1e20"), Some(Duration::MAX));
    assert_eq!(v("-1"), None);
    assert_eq!(v("NaN"), None);
    assert_eq!(v("inf"), None);
    assert_eq!(v("Wed, 21 Oct 2026 07:28:00 GMT"), None);
}

#[tokio::test]
async fn retry_after_1e20_fails_the_job_cleanly_instead_of_leaving_it_running() {
    let provider = fake::start(|_: &Method, _: &str| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1e20")],
            "slow down",
        )
            .into_response()
    })
    .await;
    let url = provider.url();
    let (t, _, _, v) = one_job(
        move |c| {
            c.provider_url = Some(url);
            c.provider_max_retries = 2;
            c.retry_max = Duration::from_millis(20);
        },
        SimConfig::fast(10),
    )
    .await;
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error_code"], "provider_unavailable", "{v}");
    assert_eq!(
        provider.seen().len(),
        3,
        "waited at most retry_max each time"
    );
    t.app.shutdown().await;
}

#[tokio::test]
async fn bodies_past_their_bound_are_cut_off() {
    // 3 MB of JSON, streamed without a length.
    let provider = fake::start(|m: &Method, p: &str| {
        if p.ends_with("/status") {
            let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
            let stream = futures_util::stream::iter(
                (0..48).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            axum::body::Body::from_stream(stream).into_response()
        } else {
            fake::provider("/files/r1.glb".into())(m, p)
        }
    })
    .await;
    let err = generate(&client(cfg(&provider)))
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            ProviderError::TooLarge {
                endpoint: "status",
                ..
            }
        ),
        "{err}"
    );
    let provider = fake::start(fake::provider("/files/r1.glb".into())).await;
    let c = client(ProviderConfig {
        max_model_bytes: 100,
        ..cfg(&provider)
    });
    let err = generate(&c).await.expect_err("too large");
    assert!(
        matches!(
            err,
            ProviderError::TooLarge {
                endpoint: "download",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn provider_error_bodies_never_reach_the_public_job_error() {
    let provider = fake::start(|_: &Method, _: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"detail": "secret-token-123 at /srv/provider/queue.db"})),
        )
            .into_response()
    })
    .await;
    let url = provider.url();
    let (t, _, _, v) = one_job(move |c| c.provider_url = Some(url), SimConfig::fast(10)).await;
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error_code"], "provider_rejected", "{v}");
    let err = v["error"].as_str().expect("error");
    assert!(err.contains("HTTP 400"), "{err}");
    assert!(!err.contains("secret") && !err.contains("/srv"), "{err}");
    t.app.shutdown().await;
}
