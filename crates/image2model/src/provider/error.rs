//! Why a generation failed: the full story for the log, a stable code and a fixed text for clients.

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
        /// The provider's message (bounded; never shown to API clients).
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
        /// The last failure's class for clients: `HTTP 503`, `timeout`, `connection failed`.
        class: String,
    },
    /// The answer is not what the API promises.
    #[error("provider {endpoint} answered garbage: {reason}")]
    Garbage {
        /// The endpoint.
        endpoint: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An answer is larger than its bound.
    #[error("provider {endpoint} answer exceeds {limit} bytes")]
    TooLarge {
        /// The endpoint.
        endpoint: &'static str,
        /// The bound.
        limit: usize,
    },
    /// The provider named a model URL this client does not fetch (other origin not allowed,
    /// plain http, a private address).
    #[error("model URL {url} refused: {reason}")]
    DownloadRefused {
        /// The URL (bounded).
        url: String,
        /// Why.
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

impl ProviderError {
    /// A stable code for the job's `error_code`.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Rejected { .. } => "provider_rejected",
            ProviderError::RetriesExhausted { .. } => "provider_unavailable",
            ProviderError::Garbage { .. } => "provider_garbage",
            ProviderError::TooLarge { .. } => "provider_answer_too_large",
            ProviderError::DownloadRefused { .. } => "model_url_refused",
            ProviderError::Tls { .. } => "provider_tls",
            ProviderError::GenerationFailed(_) => "generation_failed",
            ProviderError::Config(_) => "provider_config",
        }
    }

    /// What an API client sees: fixed text and numbers, never a provider body, a URL, a host
    /// or a path (those are in [`Display`](std::fmt::Display), for the log).
    pub fn public_message(&self) -> String {
        match self {
            ProviderError::Rejected {
                endpoint, status, ..
            } => format!("the provider rejected the {endpoint} call (HTTP {status})"),
            ProviderError::RetriesExhausted {
                endpoint,
                attempts,
                class,
                ..
            } => format!(
                "the provider {endpoint} call failed after {attempts} attempts (last: {class})"
            ),
            ProviderError::Garbage { endpoint, .. } => {
                format!("the provider answered garbage to the {endpoint} call")
            }
            ProviderError::TooLarge { endpoint, limit } => {
                format!("the provider's {endpoint} answer exceeds {limit} bytes")
            }
            ProviderError::DownloadRefused { .. } => {
                "the provider named a model URL this service does not download from".into()
            }
            ProviderError::Tls { endpoint, .. } => {
                format!("the TLS handshake with the provider failed ({endpoint} call)")
            }
            ProviderError::GenerationFailed(_) => "generation failed at the provider".into(),
            ProviderError::Config(_) => "the provider client is misconfigured".into(),
        }
    }
}
