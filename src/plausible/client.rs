//! The HTTP client for Plausible: the only requests this server may send
//! ([`Endpoint`], an allow-list of (method, path) pairs), their retry
//! policy, and the mapping of Plausible's answers to [`PlausibleError`].

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use url::Url;

#[cfg(test)]
use super::query::Query;
use crate::http::{Headers, Method};
use crate::ports::{Clock, Outbound, OutboundError, OutboundRequest};
use crate::secret::PlausibleKey;

/// Plausible answers in well under a second; past this it is unwell and
/// the model is better told so than kept waiting.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Where Plausible lives: `https://plausible.io` or a self-hosted base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlausibleBaseUrl(Url);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseUrlError {
    NotAUrl,
    /// Only https, or plain http to a loopback host (local development).
    InsecureScheme,
    /// No credentials, query or fragment in the base.
    ExtraParts,
}

impl PlausibleBaseUrl {
    pub(crate) const DEFAULT: &'static str = "https://plausible.io";

    pub(crate) fn parse(raw: &str) -> Result<Self, BaseUrlError> {
        let url = Url::parse(raw.trim()).map_err(|_| BaseUrlError::NotAUrl)?;
        if url.host().is_none() {
            return Err(BaseUrlError::NotAUrl);
        }
        let loopback = crate::http::is_loopback(&url);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(BaseUrlError::InsecureScheme),
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(BaseUrlError::ExtraParts);
        }
        Ok(Self(url))
    }

    /// `{base}/api/v2/query`, keeping a self-hosted path prefix.
    #[cfg(test)]
    pub(crate) fn query_endpoint(&self) -> Url {
        self.endpoint(Endpoint::Query, &[])
    }

    /// An allowed endpoint under this base, with query parameters.
    pub(crate) fn endpoint(&self, endpoint: Endpoint, params: &[(&str, &str)]) -> Url {
        let mut url = self.0.clone();
        let path = format!("{}{}", url.path().trim_end_matches('/'), endpoint.path());
        url.set_path(&path);
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        url
    }

    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Every request this server sends to Plausible: reads only. A Sites API
/// key can also create and delete sites and goals; no value of this type
/// can name those endpoints, so no code path can send them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /api/v2/query` (Stats API v2).
    Query,
    /// `GET /api/v1/sites` (Sites API, paginated).
    Sites,
    /// `GET /api/v1/sites/goals?site_id=` (Sites API, paginated).
    Goals,
}

impl Endpoint {
    #[cfg(test)]
    pub(crate) const ALL: [Endpoint; 3] = [Endpoint::Query, Endpoint::Sites, Endpoint::Goals];

    pub(crate) fn method(self) -> Method {
        match self {
            Endpoint::Query => Method::Post,
            Endpoint::Sites | Endpoint::Goals => Method::Get,
        }
    }

    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Query => "/api/v2/query",
            Endpoint::Sites => "/api/v1/sites",
            Endpoint::Goals => "/api/v1/sites/goals",
        }
    }
}

/// Why a query produced no data, in terms a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PlausibleError {
    /// 401/403: the key is wrong, or cannot see this site.
    Unauthorized(u16),
    /// 402: the plan lacks the Stats API, or the site is locked.
    PaymentRequired,
    /// 400: Plausible refused the query.
    Rejected,
    /// 400 with Plausible's validation message (`{"error": "…"}`), which
    /// names what is wrong with our own query: shown only for raw queries.
    RejectedBecause(String),
    /// 429: Plausible counts requests in fixed hourly windows and sends
    /// no `Retry-After`, so without one we point at the next full hour.
    RateLimited {
        retry_after_secs: u64,
    },
    /// 404: nothing at `/api/v2/query`, so the base URL is wrong.
    NotFound,
    /// 5xx.
    Unavailable(u16),
    Timeout,
    Unreachable,
    /// A 2xx whose body is not a Stats API result.
    BadResponse,
    /// Any other status.
    Unexpected(u16),
}

impl PlausibleError {
    /// The message the model sees. Never includes the key or the body
    /// Plausible sent.
    pub(crate) fn message(&self, site: &str) -> String {
        match self {
            PlausibleError::Unauthorized(status) => format!(
                "Plausible rejected the API key or site_id ({status}): check that the key is valid and that it has access to the site \"{site}\" (site_id is the domain exactly as it appears in Plausible)."
            ),
            PlausibleError::PaymentRequired => "Plausible refused the request (402): the account behind this API key has no Stats API access on its plan, or the site is locked.".to_owned(),
            PlausibleError::Rejected | PlausibleError::RejectedBecause(_) => "Plausible rejected the query as invalid (400). Check the metric, dimension and filter combination against the rules in this server's instructions.".to_owned(),
            PlausibleError::RateLimited { retry_after_secs } => format!(
                "Plausible rate limit exceeded (429): the API allows a fixed number of requests per hour per key. Retry in about {} (after {retry_after_secs} s).",
                human_duration(*retry_after_secs)
            ),
            PlausibleError::NotFound => "Plausible's query endpoint was not found (404): the server's PLAUSIBLE_BASE_URL is probably wrong.".to_owned(),
            PlausibleError::Unavailable(status) => format!(
                "Plausible is unavailable right now (HTTP {status}). Try again in a few minutes."
            ),
            PlausibleError::Timeout => format!(
                "Plausible did not answer within {} seconds; it may be unavailable. Try again in a few minutes, or ask for a shorter date range.",
                TIMEOUT.as_secs()
            ),
            PlausibleError::Unreachable => "Plausible could not be reached (network error). Try again in a few minutes.".to_owned(),
            PlausibleError::BadResponse => "Plausible answered with a response this server could not read.".to_owned(),
            PlausibleError::Unexpected(status) => format!("Plausible answered with unexpected status {status}."),
        }
    }
}

fn human_duration(secs: u64) -> String {
    match secs {
        0..=90 => format!("{secs} seconds"),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

/// One row of a Stats API result, values in query order.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct Row {
    #[serde(default)]
    pub(crate) dimensions: Vec<Value>,
    pub(crate) metrics: Vec<Value>,
}

#[cfg(test)]
#[derive(Deserialize)]
struct QueryResponse {
    results: Vec<Row>,
}

/// Runs one query and returns its rows (tests of the transport rules).
#[cfg(test)]
pub(crate) async fn run<P: Outbound + Clock>(
    platform: &P,
    base: &PlausibleBaseUrl,
    key: &PlausibleKey,
    query: &Query,
) -> Result<Vec<Row>, PlausibleError> {
    let body =
        serde_json::to_vec(&query.body(platform.now())).map_err(|_| PlausibleError::BadResponse)?;
    let sent = std::cell::Cell::new(0);
    let answer = send(platform, base, key, Endpoint::Query, &[], body, &sent).await?;
    serde_json::from_slice::<QueryResponse>(&answer)
        .map(|r| r.results)
        .map_err(|_| PlausibleError::BadResponse)
}

/// Sends one request to an allowed endpoint and returns the 2xx body.
/// `sent` counts every request that left, retries included: each counts
/// against Plausible's hourly quota.
///
/// A 502/503/504 or a connection failure is retried once: these are
/// idempotent reads and those failures are usually momentary. 4xx
/// answers and timeouts are never retried.
pub(crate) async fn send<P: Outbound + Clock>(
    platform: &P,
    base: &PlausibleBaseUrl,
    key: &PlausibleKey,
    endpoint: Endpoint,
    params: &[(&str, &str)],
    body: Vec<u8>,
    sent: &std::cell::Cell<u32>,
) -> Result<Vec<u8>, PlausibleError> {
    let mut headers = Headers::new();
    headers.set("authorization", format!("Bearer {}", key.secret()));
    if endpoint.method() == Method::Post {
        headers.set("content-type", "application/json");
    }
    headers.set("accept", "application/json");
    let request = OutboundRequest {
        method: endpoint.method(),
        url: base.endpoint(endpoint, params),
        headers,
        body,
        timeout: TIMEOUT,
        max_body_bytes: MAX_RESPONSE_BYTES,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        sent.set(sent.get().saturating_add(1));
        let outcome = platform.send(request.clone()).await;
        let retryable = match &outcome {
            Ok(r) => matches!(r.status, 502..=504),
            Err(OutboundError::Network(_)) => true,
            Err(_) => false,
        };
        if retryable && attempt < 2 {
            continue;
        }
        let response = match outcome {
            Ok(r) => r,
            Err(OutboundError::Timeout) => return Err(PlausibleError::Timeout),
            Err(OutboundError::TooLarge) => return Err(PlausibleError::BadResponse),
            Err(OutboundError::Network(_)) => return Err(PlausibleError::Unreachable),
        };
        return match response.status {
            200..=299 => Ok(response.body),
            400 => Err(validation_message(&response.body)
                .map_or(PlausibleError::Rejected, PlausibleError::RejectedBecause)),
            401 | 403 => Err(PlausibleError::Unauthorized(response.status)),
            402 => Err(PlausibleError::PaymentRequired),
            404 => Err(PlausibleError::NotFound),
            429 => Err(PlausibleError::RateLimited {
                retry_after_secs: retry_after(
                    response.headers.get("retry-after"),
                    platform.now().as_secs(),
                ),
            }),
            s @ 500..=599 => Err(PlausibleError::Unavailable(s)),
            s => Err(PlausibleError::Unexpected(s)),
        };
    }
}

/// Plausible's 400 body is `{"error": "<message>"}`: the message, cut to
/// a length a model can read, when it has that shape; nothing otherwise.
fn validation_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let text: String = parsed
        .error
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(500)
        .collect();
    (!text.trim().is_empty()).then_some(text)
}

/// `Retry-After` in seconds when sent (RFC 9110 §10.2.3, delay form),
/// otherwise the time to the next full hour, when Plausible's fixed
/// window resets.
fn retry_after(header: Option<&str>, now_secs: u64) -> u64 {
    header
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| 3600 - now_secs % 3600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plausible::args::{DateRange, SiteId};
    use crate::plausible::vocabulary::Metric;
    use crate::ports::OutboundResponse;
    use crate::testing::{FakePlatform, block_on};

    fn query() -> Query {
        Query::new(
            SiteId::parse("site_id", "example.com").unwrap(),
            vec![Metric::Visitors],
            DateRange::Day,
            vec![],
            vec![],
            None,
        )
        .unwrap()
    }

    fn answer(status: u16, body: &str) -> Result<OutboundResponse, OutboundError> {
        Ok(OutboundResponse {
            status,
            headers: Headers::new(),
            body: body.as_bytes().to_vec(),
        })
    }

    fn run_with(
        f: impl Fn(&OutboundRequest) -> Result<OutboundResponse, OutboundError> + 'static,
    ) -> (Result<Vec<Row>, PlausibleError>, FakePlatform) {
        let p = FakePlatform::new();
        p.respond_with(f);
        let base = PlausibleBaseUrl::parse("https://plausible.io").unwrap();
        let result = block_on(run(&p, &base, &PlausibleKey::new("KEY-123456"), &query()));
        (result, p)
    }

    /// The allow-list: exactly these (method, path) pairs, all reads but
    /// the Stats API's POST query.
    #[test]
    fn only_reads_are_allowed() {
        let pairs: Vec<(Method, &str)> = Endpoint::ALL
            .iter()
            .map(|e| (e.method(), e.path()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (Method::Post, "/api/v2/query"),
                (Method::Get, "/api/v1/sites"),
                (Method::Get, "/api/v1/sites/goals"),
            ]
        );
        let base = PlausibleBaseUrl::parse("https://stats.example.com/p/").unwrap();
        assert_eq!(
            base.endpoint(Endpoint::Goals, &[("site_id", "a b.com"), ("after", "x")])
                .as_str(),
            "https://stats.example.com/p/api/v1/sites/goals?site_id=a+b.com&after=x"
        );
    }

    #[test]
    fn a_400_carries_plausibles_message_only_when_it_has_its_shape() {
        let (r, _) =
            run_with(|_| answer(400, r##"{"error":"#/metrics/0: Invalid metric \"x\""}"##));
        assert_eq!(
            r.unwrap_err(),
            PlausibleError::RejectedBecause("#/metrics/0: Invalid metric \"x\"".into())
        );
        let (r, _) = run_with(|_| answer(400, "<html>"));
        assert_eq!(r.unwrap_err(), PlausibleError::Rejected);
    }

    #[test]
    fn base_urls() {
        let ok = [
            ("https://plausible.io", "https://plausible.io/api/v2/query"),
            ("https://plausible.io/", "https://plausible.io/api/v2/query"),
            (
                "https://stats.example.com/plausible/",
                "https://stats.example.com/plausible/api/v2/query",
            ),
            (
                "http://127.0.0.1:8788",
                "http://127.0.0.1:8788/api/v2/query",
            ),
            (
                "http://localhost:8000",
                "http://localhost:8000/api/v2/query",
            ),
            ("http://[::1]:8000", "http://[::1]:8000/api/v2/query"),
        ];
        for (raw, endpoint) in ok {
            assert_eq!(
                PlausibleBaseUrl::parse(raw)
                    .unwrap()
                    .query_endpoint()
                    .as_str(),
                endpoint
            );
        }
        let bad = [
            ("plausible.io", BaseUrlError::NotAUrl),
            ("http://plausible.io", BaseUrlError::InsecureScheme),
            ("http://10.0.0.1", BaseUrlError::InsecureScheme),
            ("ftp://plausible.io", BaseUrlError::InsecureScheme),
            ("https://user:pw@plausible.io", BaseUrlError::ExtraParts),
            ("https://plausible.io/?x=1", BaseUrlError::ExtraParts),
        ];
        for (raw, err) in bad {
            assert_eq!(PlausibleBaseUrl::parse(raw), Err(err), "{raw}");
        }
    }

    #[test]
    fn sends_one_authorised_json_post() {
        let (result, p) = run_with(|_| {
            answer(
                200,
                r#"{"results":[{"metrics":[5],"dimensions":[]}],"meta":{},"query":{}}"#,
            )
        });
        assert_eq!(
            result.unwrap(),
            vec![Row {
                dimensions: vec![],
                metrics: vec![Value::from(5)]
            }]
        );
        let sent = p.sent.borrow();
        assert_eq!(sent.len(), 1);
        let req = &sent[0];
        assert_eq!(req.method, Method::Post);
        assert_eq!(req.url.as_str(), "https://plausible.io/api/v2/query");
        assert_eq!(req.headers.get("authorization"), Some("Bearer KEY-123456"));
        assert_eq!(req.headers.get("content-type"), Some("application/json"));
        assert_eq!(req.timeout, TIMEOUT);
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"site_id":"example.com","metrics":["visitors"],"date_range":"day"})
        );
    }

    #[test]
    fn statuses_map_to_errors_and_4xx_is_never_retried() {
        let cases = [
            (400, PlausibleError::Rejected, 1),
            (401, PlausibleError::Unauthorized(401), 1),
            (402, PlausibleError::PaymentRequired, 1),
            (403, PlausibleError::Unauthorized(403), 1),
            (404, PlausibleError::NotFound, 1),
            (418, PlausibleError::Unexpected(418), 1),
            (500, PlausibleError::Unavailable(500), 1),
            (503, PlausibleError::Unavailable(503), 2),
        ];
        for (status, expected, attempts) in cases {
            let (result, p) = run_with(move |_| answer(status, "STUB-UPSTREAM-BODY"));
            assert_eq!(result.unwrap_err(), expected, "{status}");
            assert_eq!(p.sent_count(), attempts, "{status}");
        }
    }

    #[test]
    fn transport_failures() {
        let (r, p) = run_with(|_| Err(OutboundError::Timeout));
        assert_eq!(
            (r.unwrap_err(), p.sent_count()),
            (PlausibleError::Timeout, 1)
        );
        let (r, p) = run_with(|_| Err(OutboundError::Network("dns".into())));
        assert_eq!(
            (r.unwrap_err(), p.sent_count()),
            (PlausibleError::Unreachable, 2)
        );
        let (r, _) = run_with(|_| answer(200, "<html>"));
        assert_eq!(r.unwrap_err(), PlausibleError::BadResponse);
    }

    #[test]
    fn a_retry_that_succeeds_returns_data() {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let c = calls.clone();
        let (r, _) = run_with(move |_| {
            c.set(c.get() + 1);
            if c.get() == 1 {
                answer(502, "")
            } else {
                answer(200, r#"{"results":[]}"#)
            }
        });
        assert_eq!(r.unwrap(), vec![]);
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn rate_limit_points_at_retry_after_or_the_next_hour() {
        assert_eq!(retry_after(Some("120"), 0), 120);
        assert_eq!(retry_after(None, 3600 * 10 + 600), 3000);
        assert_eq!(retry_after(Some("soon"), 3599), 1);
        let msg = PlausibleError::RateLimited {
            retry_after_secs: 3000,
        }
        .message("a.com");
        assert!(msg.contains("429") && msg.contains("50 minutes"), "{msg}");
    }

    #[test]
    fn messages_never_carry_the_key_or_body() {
        let all = [
            PlausibleError::Unauthorized(401),
            PlausibleError::PaymentRequired,
            PlausibleError::Rejected,
            PlausibleError::RateLimited {
                retry_after_secs: 5,
            },
            PlausibleError::NotFound,
            PlausibleError::Unavailable(502),
            PlausibleError::Timeout,
            PlausibleError::Unreachable,
            PlausibleError::BadResponse,
            PlausibleError::Unexpected(418),
        ];
        for e in all {
            let m = e.message("example.com");
            assert!(
                !m.contains("KEY-123456") && !m.contains("STUB-UPSTREAM-BODY"),
                "{m}"
            );
        }
        assert!(
            PlausibleError::Unauthorized(401)
                .message("x")
                .contains("401")
        );
    }
}
