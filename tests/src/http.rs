//! The HTTP requests tests make to the stack's components: one way to build a client, one error shape
//! ([`StackError::Http`], naming the URL), and the two reads every reader shares (JSON and text).

use std::time::Duration;

use serde_json::Value;

use crate::error::StackError;

/// How long one request to a component may take, unless a caller says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A blocking client whose requests give up after [`TIMEOUT`].
pub fn client() -> Result<reqwest::blocking::Client, StackError> {
    client_with_timeout(TIMEOUT)
}

/// A blocking client whose requests give up after `timeout`.
pub fn client_with_timeout(timeout: Duration) -> Result<reqwest::blocking::Client, StackError> {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(StackError::http("building an HTTP client"))
}

/// GETs `url` with `query` parameters: the status and the body as JSON (a JSON string holding the text when
/// the body is not JSON, so error pages still reach the failure message).
pub fn get_json(url: &str, query: &[(&str, String)]) -> Result<(u16, Value), StackError> {
    let resp = client()?
        .get(url)
        .query(query)
        .send()
        .map_err(StackError::http(url))?;
    let status = resp.status().as_u16();
    let text = resp.text().map_err(StackError::http(url))?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// GETs `url`: the body as text, whatever the status.
pub fn get_text(url: &str) -> Result<String, StackError> {
    client()?
        .get(url)
        .send()
        .and_then(|r| r.text())
        .map_err(StackError::http(url))
}

/// POSTs `body` as JSON to `url`; an error unless the answer is 2xx.
pub fn post_json(url: &str, body: &Value) -> Result<(), StackError> {
    let resp = client()?
        .post(url)
        .json(body)
        .send()
        .map_err(StackError::http(url))?;
    success(url, resp)
}

/// `Ok` for a 2xx answer to a request to `url`; else an error with the status and the body.
pub fn success(url: &str, resp: reqwest::blocking::Response) -> Result<(), StackError> {
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        let text = resp.text().unwrap_or_default();
        Err(StackError::http(url)(format!("HTTP {status}: {text}")))
    }
}
