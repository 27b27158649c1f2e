//! A fake provider on loopback: answers each request with a handler the test gives, and records
//! every request's path and headers (to check what the app sent where).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

/// A request the fake server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

pub struct Fake {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Starts a fake server answering `handler(method, path)`.
pub async fn start(handler: impl Fn(&Method, &str) -> Response + Send + Sync + 'static) -> Fake {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let handler = Arc::new(handler);
    let s = seen.clone();
    let app = Router::new().fallback(any(move |method: Method, uri: Uri, headers: HeaderMap| {
        let (s, handler) = (s.clone(), handler.clone());
        async move {
            if let Ok(mut v) = s.lock() {
                v.push(Seen {
                    method: method.clone(),
                    path: uri.path().to_owned(),
                    headers,
                });
            }
            handler(&method, uri.path())
        }
    }));
    let (addr, _) = super::serve_router(app).await;
    Fake { addr, seen }
}

/// The happy path of the FAL.AI queue API for request `r1`, with `model_url` as the result's
/// model URL; the model itself is served at `/files/r1.glb`.
pub fn provider(model_url: String) -> impl Fn(&Method, &str) -> Response + Send + Sync + 'static {
    move |method, path| match (method.as_str(), path) {
        ("POST", "/fal-ai/trellis") => {
            axum::Json(serde_json::json!({"request_id": "r1"})).into_response()
        }
        (_, "/fal-ai/trellis/requests/r1/status") => {
            axum::Json(serde_json::json!({"status": "COMPLETED"})).into_response()
        }
        (_, "/fal-ai/trellis/requests/r1") => {
            axum::Json(serde_json::json!({"model_mesh": {"url": model_url}})).into_response()
        }
        (_, "/files/r1.glb") => image2model::files::triangle_glb("r1").into_response(),
        _ => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
