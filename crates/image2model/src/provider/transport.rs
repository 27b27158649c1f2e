//! Failures of provider calls, classified: TLS refusals (not retried), transport errors (their
//! class for clients, their chain for logs), refused redirects.

use std::error::Error as _;

pub(super) const CA_HINT: &str =
    " (to trust a private CA, put its PEM certificate in IMAGE2MODEL_PROVIDER_CA_FILE)";

/// An error and its sources, `a: b: c`; `io::Error`s also show what they wrap.
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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

pub(super) fn transport_reason(e: &reqwest_middleware::Error) -> String {
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

/// The class of a transport failure, for clients: no hosts, addresses or OS messages.
pub(super) fn transport_class(e: &reqwest_middleware::Error) -> &'static str {
    match e {
        reqwest_middleware::Error::Reqwest(r) if r.is_timeout() => "timeout",
        reqwest_middleware::Error::Reqwest(r) if r.is_connect() => "connection failed",
        _ => "transport error",
    }
}

/// Why a redirect was refused by a download policy, if that is what failed.
pub(super) fn redirect_refused(e: &reqwest_middleware::Error) -> Option<String> {
    match e {
        reqwest_middleware::Error::Reqwest(r) if r.is_redirect() => Some(
            r.source()
                .map(error_chain)
                .unwrap_or_else(|| "redirect refused".into()),
        ),
        _ => None,
    }
}

pub(super) fn host_port(u: &reqwest::Url) -> String {
    match (u.host_str(), u.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => u.to_string(),
    }
}

pub(super) struct TlsFailure {
    pub(super) reason: String,
    /// The certificate chains to no trusted root (a private CA would fix it).
    pub(super) unknown_issuer: bool,
}

/// The rustls error behind a failed call, if the TLS handshake failed. rustls errors arrive
/// wrapped in (nested) `io::Error`s, whose `source()` skips the wrapped error: look inside.
pub(super) fn tls_failure(e: &reqwest_middleware::Error) -> Option<TlsFailure> {
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
