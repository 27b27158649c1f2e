//! `user_id`: a keyed hash of the bearer token, never the token. [`UserIdLayer`] puts it in the
//! request extensions ([`UserId`]); the server span carries it, so every log line of the request
//! does.
//!
//! ```
//! use axum::{Router, routing::get};
//! use otelbricks_http::{UserIdHasher, UserIdLayer};
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(UserIdLayer::new(UserIdHasher::with_key(b"secret".to_vec())));
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use hmac::{KeyInit, Mac};
use http::{HeaderMap, Request};
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

/// The hashed user id, put in the request extensions by [`UserIdLayer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId(String);

impl UserId {
    /// 16 lowercase hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hashes `Authorization: Bearer <token>` into a [`UserId`]: HMAC-SHA256 with a secret key,
/// truncated to 16 hex characters. Without a key it falls back to plain SHA-256 (what the Python design did),
/// which anyone holding a token can recompute, and warns once.
///
/// ```
/// use otelbricks_http::UserIdHasher;
///
/// let hasher = UserIdHasher::with_key(b"a secret from the environment".to_vec());
/// let mut headers = http::HeaderMap::new();
/// headers.insert("authorization", "Bearer abc.def".parse().unwrap());
/// let id = hasher.user_id(&headers).unwrap();
/// assert_eq!(id.as_str().len(), 16);
/// assert!(!id.as_str().contains("abc"));
/// ```
#[derive(Clone)]
pub struct UserIdHasher {
    key: Option<Arc<[u8]>>,
    warned: Arc<AtomicBool>,
}

impl std::fmt::Debug for UserIdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserIdHasher")
            .field("keyed", &self.key.is_some())
            .finish()
    }
}

impl Default for UserIdHasher {
    fn default() -> Self {
        Self::unkeyed()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex16(digest: &[u8]) -> String {
    let mut s = String::with_capacity(16);
    for b in digest.iter().take(8) {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

impl UserIdHasher {
    /// HMAC-SHA256 with `key`.
    pub fn with_key(key: impl Into<Vec<u8>>) -> Self {
        UserIdHasher {
            key: Some(Arc::from(key.into())),
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Plain SHA-256, as the Python design did (warns once when first used).
    pub fn unkeyed() -> Self {
        UserIdHasher {
            key: None,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The user id of a request, if it has a bearer token.
    pub fn user_id(&self, headers: &HeaderMap) -> Option<UserId> {
        let value = headers.get(http::header::AUTHORIZATION)?.as_bytes();
        let token = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))?
            .trim_ascii();
        if token.is_empty() {
            return None;
        }
        Some(UserId(self.hash(token)))
    }

    fn hash(&self, token: &[u8]) -> String {
        match &self.key {
            Some(key) => match <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(token);
                    hex16(&mac.finalize().into_bytes())
                }
                // HMAC takes keys of any length; unreachable in practice, but never fall back to
                // something that could leak the token.
                Err(_) => hex16(&Sha256::digest(token)),
            },
            None => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "otelbricks_http",
                        "user_id is a plain SHA-256 of the bearer token (no key configured): anyone with a token can link it to its user id; configure a key"
                    );
                }
                hex16(&Sha256::digest(token))
            }
        }
    }
}

/// Puts the [`UserId`] of requests with a bearer token in their extensions. See the
/// [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct UserIdLayer {
    hasher: UserIdHasher,
}

impl UserIdLayer {
    /// Hashes with `hasher`.
    pub fn new(hasher: UserIdHasher) -> Self {
        UserIdLayer { hasher }
    }
}

impl<S> Layer<S> for UserIdLayer {
    type Service = SetUserId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetUserId {
            inner,
            hasher: self.hasher.clone(),
        }
    }
}

/// The service of [`UserIdLayer`].
#[derive(Debug, Clone)]
pub struct SetUserId<S> {
    inner: S,
    hasher: UserIdHasher,
}

impl<S, B> Service<Request<B>> for SetUserId<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if !crate::exclude::is_excluded(&req)
            && let Some(id) = self.hasher.user_id(req.headers())
        {
            req.extensions_mut().insert(id);
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, auth.parse().expect("header"));
        h
    }

    #[test]
    fn keyed_hash_is_stable_short_hex_and_depends_on_the_key() {
        let a = UserIdHasher::with_key(b"k1".to_vec());
        let b = UserIdHasher::with_key(b"k2".to_vec());
        let h = headers("Bearer tok-123");
        let ida = a.user_id(&h).expect("id");
        assert_eq!(ida, a.user_id(&h).expect("id"));
        assert_ne!(ida, b.user_id(&h).expect("id"));
        assert_eq!(ida.as_str().len(), 16);
        assert!(ida.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn unkeyed_hash_is_the_python_designs_sha256_prefix() {
        let id = UserIdHasher::unkeyed()
            .user_id(&headers("Bearer abc"))
            .expect("id");
        // sha256("abc") = ba7816bf8f01cfea...
        assert_eq!(id.as_str(), "ba7816bf8f01cfea");
    }

    #[test]
    fn no_bearer_token_no_user_id() {
        let h = UserIdHasher::unkeyed();
        assert!(h.user_id(&HeaderMap::new()).is_none());
        assert!(h.user_id(&headers("Basic dXNlcjpwYXNz")).is_none());
        assert!(h.user_id(&headers("Bearer ")).is_none());
    }
}
