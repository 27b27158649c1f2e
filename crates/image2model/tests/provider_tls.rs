//! An `https://` provider: a real TLS handshake (rustls) against the simulator served over TLS
//! with a certificate of a private test CA. Untrusted, the job fails at once with the stable
//! code `provider_tls` (the public message names no host), and the provider error the log gets
//! says how to trust the CA; with `IMAGE2MODEL_PROVIDER_CA_FILE` it succeeds.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use image2model::app::{App, AppOptions};
use image2model::config::ServeConfig;
use image2model::sim::{SimConfig, SimStats};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio_rustls::rustls;

/// A private CA and a server certificate it signed for `names`.
struct TestPki {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki(names: &[&str]) -> TestPki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "image2model test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    TestPki {
        ca_pem: ca_cert.pem(),
        server_chain: vec![cert.der().clone()],
        server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

/// A TLS listener for `axum::serve`: accepts TCP, runs the handshake, counts handshake attempts
/// (a refused handshake is dropped, the next connection is accepted).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    handshakes: Arc<AtomicU64>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                // A failed accept (out of descriptors): back off instead of spinning. Not a wait.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            self.handshakes.fetch_add(1, Ordering::SeqCst);
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The simulator served over TLS with `pki`'s server certificate.
struct TlsSim {
    port: u16,
    stats: SimStats,
    handshakes: Arc<AtomicU64>,
}

async fn tls_sim(pki: &TestPki) -> TlsSim {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .expect("server config");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = tcp.local_addr().expect("addr").port();
    let handshakes = Arc::new(AtomicU64::new(0));
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        handshakes: handshakes.clone(),
    };
    let (router, stats) = image2model::sim::router(SimConfig::fast(30));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    TlsSim {
        port,
        stats,
        handshakes,
    }
}

fn cfg_for(dir: &std::path::Path, url: String) -> ServeConfig {
    let mut cfg = ServeConfig::for_tests(dir, SimConfig::fast(30));
    cfg.provider_url = Some(url);
    cfg
}

/// What the provider client reports (the log line's detail) for `cfg`'s provider.
async fn provider_error(cfg: &ServeConfig) -> String {
    let meter = opentelemetry_sdk::metrics::SdkMeterProvider::default();
    let meter = opentelemetry::metrics::MeterProvider::meter(&meter, "test");
    let client = image2model::provider::ProviderClient::new(
        image2model::provider::ProviderConfig {
            ca_file: cfg.provider_ca_file.clone(),
            max_retries: 0,
            ..image2model::provider::ProviderConfig::new(cfg.provider_url.clone().expect("url"))
        },
        otelbricks_http::HttpClientMiddleware::with_meter(&meter),
        image2model::metrics::Metrics::new(&meter),
    )
    .expect("client");
    client
        .generate(PNG, "image/png", &serde_json::json!({}))
        .await
        .expect_err("refused")
        .to_string()
}

/// The job's public error: the stable TLS code, and a message without host, port or variable.
fn assert_public_tls_error(v: &serde_json::Value) {
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error_code"], "provider_tls", "{v}");
    let err = v["error"].as_str().expect("error");
    assert!(err.contains("TLS handshake"), "{err}");
    assert!(
        !err.contains("localhost") && !err.contains("IMAGE2MODEL") && !err.contains("certificate"),
        "no detail for API clients: {err}"
    );
}

async fn run_one_job(cfg: ServeConfig) -> serde_json::Value {
    let app = App::start(cfg, AppOptions::default())
        .await
        .expect("starts with an https provider");
    let router = app.router();
    let file = upload(&router).await;
    let job = create_job(&router, &file).await;
    let v = wait_job(&router, &job, Duration::from_secs(15)).await;
    app.shutdown().await;
    v
}

#[tokio::test]
async fn an_untrusted_provider_certificate_fails_the_job_at_once_with_a_certificate_error() {
    let pki = pki(&["localhost"]);
    let sim = tls_sim(&pki).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = cfg_for(dir.path(), format!("https://localhost:{}", sim.port));
    let v = run_one_job(cfg.clone()).await;
    assert_public_tls_error(&v);
    assert_eq!(
        sim.handshakes.load(Ordering::SeqCst),
        1,
        "a certificate error is not retried"
    );
    let err = provider_error(&cfg).await;
    assert!(
        err.contains("TLS handshake with localhost:"),
        "names the host: {err}"
    );
    assert!(
        err.contains("invalid peer certificate") && err.contains("UnknownIssuer"),
        "says the certificate is not trusted: {err}"
    );
    assert!(
        err.contains("IMAGE2MODEL_PROVIDER_CA_FILE"),
        "says how to trust it: {err}"
    );
    assert_eq!(sim.stats.calls(), 0, "no HTTP request got through");
}

#[tokio::test]
async fn trusting_the_ca_file_lets_the_job_succeed_over_tls() {
    let pki = pki(&["localhost"]);
    let sim = tls_sim(&pki).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).expect("write ca");
    let mut cfg = cfg_for(dir.path(), format!("https://localhost:{}", sim.port));
    cfg.provider_ca_file = Some(ca);
    let v = run_one_job(cfg).await;
    assert_eq!(v["status"], "succeeded", "{v}");
    // submit, at least one status poll, result, download.
    assert!(sim.stats.calls() >= 4, "calls: {}", sim.stats.calls());
}

#[tokio::test]
async fn a_trusted_certificate_for_another_name_is_refused() {
    let pki = pki(&["provider.example"]);
    let sim = tls_sim(&pki).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).expect("write ca");
    let mut cfg = cfg_for(dir.path(), format!("https://localhost:{}", sim.port));
    cfg.provider_ca_file = Some(ca);
    let v = run_one_job(cfg.clone()).await;
    assert_public_tls_error(&v);
    let err = provider_error(&cfg).await;
    assert!(
        err.contains("TLS handshake") && err.contains("certificate not valid for name"),
        "{err}"
    );
    assert!(
        !err.contains("IMAGE2MODEL_PROVIDER_CA_FILE"),
        "no CA hint for a name mismatch: {err}"
    );
    assert_eq!(sim.stats.calls(), 0);
}

#[tokio::test]
async fn provider_urls_and_ca_files_are_checked_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    // https is accepted even with nothing listening: the handshake happens per call.
    let app = App::start(
        cfg_for(&dir.path().join("a"), "https://127.0.0.1:9/".into()),
        AppOptions::default(),
    )
    .await
    .expect("an https provider URL is accepted");
    app.shutdown().await;

    for (url, want) in [
        ("ftp://provider.example", "expected http://"),
        ("queue.fal.run", "is not a URL"),
    ] {
        let err = App::start(
            cfg_for(&dir.path().join("b"), url.into()),
            AppOptions::default(),
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{url} refused"))
        .to_string();
        assert!(err.contains(want), "{url}: {err}");
    }

    let missing = dir.path().join("no-such-ca.pem");
    let mut cfg = cfg_for(&dir.path().join("c"), "https://provider.example".into());
    cfg.provider_ca_file = Some(missing.clone());
    let err = App::start(cfg, AppOptions::default())
        .await
        .err()
        .expect("a missing CA file is refused")
        .to_string();
    assert!(
        err.contains(&missing.display().to_string()),
        "names the file: {err}"
    );

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let mut cfg = cfg_for(&dir.path().join("d"), "https://provider.example".into());
    cfg.provider_ca_file = Some(garbage);
    let err = App::start(cfg, AppOptions::default())
        .await
        .err()
        .expect("a CA file without certificates is refused")
        .to_string();
    assert!(err.contains("no PEM certificate"), "{err}");
}
