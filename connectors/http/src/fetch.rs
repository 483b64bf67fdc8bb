//! One request to a web-service link: rate limit, retries with backoff,
//! status and size checks.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use tautan_connector::{LinkError, LinkErrorKind};
use tokio::time::Instant;

/// How a web-service link is reached.
#[derive(Debug, Clone)]
pub struct HttpLinkOptions {
    /// Every endpoint's path is relative to this (`http` or `https`).
    pub base_url: String,
    /// Headers sent with every request (secrets already read from the
    /// environment).
    pub headers: Vec<(String, String)>,
    /// Longest one request may take.
    pub timeout: Duration,
    /// Retries of a request answered 429 or 5xx, or not answered.
    pub retries: u32,
    /// Most pages one scan reads (more is an error, never a cut answer).
    pub max_pages: usize,
    /// Most bytes one scan reads (likewise).
    pub max_bytes: u64,
    /// Most requests per second to this link (0: no limit).
    pub requests_per_second: f64,
}

/// A web-service link: the client and what it may do.
#[derive(Debug)]
pub struct HttpLink {
    name: String,
    base: Url,
    client: reqwest::Client,
    options: HttpLinkOptions,
    /// When the next request may leave (the rate limit).
    next_slot: tokio::sync::Mutex<Instant>,
}

/// What one scan may still read.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Pages left.
    pub pages: usize,
    /// Bytes left.
    pub bytes: u64,
}

/// A whole 2xx answer.
#[derive(Debug)]
pub struct Answer {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

/// The longest wait between two tries, whatever `Retry-After` asks.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl HttpLink {
    /// A link named `name` (errors say what in `options` is unusable).
    pub fn new(name: &str, options: HttpLinkOptions) -> Result<Self, LinkError> {
        let config = |m: String| LinkError::new(name, LinkErrorKind::Config, m);
        let base = Url::parse(&options.base_url)
            .map_err(|e| config(format!("base_url \"{}\": {e}", options.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(config(format!(
                "base_url \"{}\" is not an http(s) address",
                options.base_url
            )));
        }
        let mut headers = HeaderMap::new();
        for (k, v) in &options.headers {
            let key = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| config(format!("header name \"{k}\" is not valid")))?;
            // The value may be a secret: never quoted in an error.
            let mut value = HeaderValue::from_str(v)
                .map_err(|_| config(format!("the value of header \"{k}\" is not valid")))?;
            value.set_sensitive(true);
            headers.insert(key, value);
        }
        let origin = base.origin();
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(options.timeout)
            .user_agent(concat!("tautan/", env!("CARGO_PKG_VERSION")))
            // Redirects only within the link's origin: its headers carry
            // its secrets.
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 || attempt.url().origin() != origin {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|e| config(format!("HTTP client: {e}")))?;
        Ok(HttpLink {
            name: name.to_string(),
            base,
            client,
            options,
            next_slot: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    /// The link's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The link's options.
    pub fn options(&self) -> &HttpLinkOptions {
        &self.options
    }

    /// A fresh budget for one scan.
    pub fn budget(&self) -> Budget {
        Budget {
            pages: self.options.max_pages,
            bytes: self.options.max_bytes,
        }
    }

    /// `path` resolved against the base URL; refused outside its origin.
    pub fn resolve(&self, relative_to: &Url, path: &str) -> Result<Url, LinkError> {
        let url = relative_to
            .join(path)
            .map_err(|e| self.error(LinkErrorKind::Query, format!("address \"{path}\": {e}")))?;
        if url.origin() != self.base.origin() {
            return Err(self.error(
                LinkErrorKind::Query,
                format!(
                    "the service pointed to {}, outside the link's origin {}; refused",
                    url.origin().ascii_serialization(),
                    self.base.origin().ascii_serialization()
                ),
            ));
        }
        Ok(url)
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// An error of `kind` on this link.
    pub fn error(&self, kind: LinkErrorKind, message: impl Into<String>) -> LinkError {
        LinkError::new(&self.name, kind, message)
    }

    /// Waits for this link's next request slot.
    async fn pace(&self) {
        let rate = self.options.requests_per_second;
        if rate <= 0.0 || !rate.is_finite() {
            return;
        }
        let interval = Duration::from_secs_f64(1.0 / rate);
        let wait = {
            let mut slot = self.next_slot.lock().await;
            let now = Instant::now();
            let at = (*slot).max(now);
            *slot = at + interval;
            at - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// GETs `url`: a whole 2xx answer within `budget`, after up to
    /// `retries` retries of 429, 5xx and unanswered requests.
    pub async fn get(&self, url: &Url, budget: &mut Budget) -> Result<Answer, LinkError> {
        if budget.pages == 0 {
            return Err(self
                .error(
                    LinkErrorKind::Query,
                    format!(
                        "the answer has more than max_pages = {} pages",
                        self.options.max_pages
                    ),
                )
                .with_sqlstate("54000"));
        }
        budget.pages -= 1;
        let mut attempt = 0u32;
        loop {
            self.pace().await;
            let started = std::time::Instant::now();
            let outcome = self.client.get(url.clone()).send().await;
            let retry_after = match outcome {
                Err(e) => {
                    let kind = if e.is_timeout() {
                        "timed out"
                    } else if e.is_redirect() {
                        "redirected outside the link's origin"
                    } else {
                        "could not be reached"
                    };
                    if attempt >= self.options.retries || e.is_redirect() {
                        return Err(self
                            .error(LinkErrorKind::Unavailable, format!("{} {kind}", url.path()))
                            .with_source(e));
                    }
                    None
                }
                Ok(response) => {
                    let status = response.status();
                    tracing::debug!(link = %self.name, path = %url.path(), %status, ms = started.elapsed().as_millis() as u64, "http link request");
                    if status.is_success() {
                        let headers = response.headers().clone();
                        let body = self.read_body(response, budget).await?;
                        return Ok(Answer { headers, body });
                    }
                    let retryable =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !retryable || attempt >= self.options.retries {
                        return Err(self.status_error(url, status));
                    }
                    response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs)
                }
            };
            let backoff = Duration::from_millis(100 * 2u64.saturating_pow(attempt));
            tokio::time::sleep(retry_after.unwrap_or(backoff).min(MAX_BACKOFF)).await;
            attempt += 1;
        }
    }

    /// The error for a non-2xx answer (its body is never read as rows).
    fn status_error(&self, url: &Url, status: StatusCode) -> LinkError {
        let kind = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => LinkErrorKind::Authentication,
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                LinkErrorKind::Unavailable
            }
            _ => LinkErrorKind::Query,
        };
        self.error(kind, format!("{} answered {status}", url.path()))
    }

    /// The body, refused past the scan's byte budget.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        budget: &mut Budget,
    ) -> Result<Bytes, LinkError> {
        let too_big = |link: &HttpLink| {
            link.error(
                LinkErrorKind::Query,
                format!(
                    "the answer is larger than max_bytes = {}",
                    link.options.max_bytes
                ),
            )
            .with_sqlstate("54000")
        };
        if response.content_length().is_some_and(|n| n > budget.bytes) {
            return Err(too_big(self));
        }
        let mut body = BytesMut::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                self.error(LinkErrorKind::ConnectionLost, "the answer broke off")
                    .with_source(e)
            })?;
            let Some(chunk) = chunk else { break };
            let n = chunk.len() as u64;
            if n > budget.bytes {
                return Err(too_big(self));
            }
            budget.bytes -= n;
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}
