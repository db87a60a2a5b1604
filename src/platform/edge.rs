//! The edge: the runtime's request converted to the core's
//! [`http::Request`], and the core's response back to the runtime's.

use crate::body::{BodyError, read_capped};
use crate::http::{self, Headers, Method};

/// Why an incoming request was not converted.
pub enum Inbound {
    /// The runtime handed us something unreadable (the caller answers 400).
    Unreadable,
    /// The body passed its route's ceiling (the path, for the answer).
    TooLarge(String),
}

/// The runtime's request and response, as the `fetch` entry point takes
/// and returns them: the raw `web_sys` types, so no `worker::Request`
/// (its method, path and `cf` conversions) is built only to be read again.
pub type EdgeRequest = worker::worker_sys::web_sys::Request;
pub type EdgeResponse = worker::worker_sys::web_sys::Response;

/// The incoming request's head: method, URL and headers, with an empty
/// body. The fetch path decides from it alone whether the request is
/// already answered (`crate::answer_before_body`) before any body byte is
/// read ([`read_core_body`]).
///
/// Each step here crosses between wasm and JS, and those crossings are
/// most of what a short request costs (BENCHMARKS.md, "contended;
/// CPU-time method"), so: the URL is taken once and all headers come over
/// in one string.
pub fn to_core_head(req: &EdgeRequest) -> Result<http::Request, Inbound> {
    let url = url::Url::parse(&req.url()).map_err(|_| Inbound::Unreadable)?;
    let method = Method::parse(&req.method());
    let headers = from_edge_headers(&req.headers()).ok_or(Inbound::Unreadable)?;
    Ok(http::Request {
        method,
        url,
        headers,
        body: Vec::new(),
    })
}

/// Reads the body of `req` into its `head`, at most `body_cap(path)`
/// bytes: by `Content-Length` before reading, then by a running count. A
/// body whose `Content-Length` is within the cap is read in one
/// `arrayBuffer()` rather than chunk by chunk through a stream reader (the
/// runtime frames the body by that length, so no more can arrive).
pub async fn read_core_body(
    req: &EdgeRequest,
    mut head: http::Request,
    body_cap: impl Fn(&str) -> usize,
) -> Result<http::Request, Inbound> {
    if matches!(head.method, Method::Get | Method::Head | Method::Options) || req.body().is_none() {
        return Ok(head);
    }
    let cap = body_cap(head.url.path());
    match read_body(req, head.headers.get("content-length"), cap).await {
        Ok(body) => {
            head.body = body;
            Ok(head)
        }
        Err(BodyError::TooLarge) => {
            // Cancel the rest so the sender sees a clean end of the
            // exchange rather than a reset mid-upload.
            if let Some(rest) = req.body() {
                let _ = worker::wasm_bindgen_futures::JsFuture::from(rest.cancel()).await;
            }
            Err(Inbound::TooLarge(head.url.path().to_owned()))
        }
        Err(BodyError::Stream(_)) => Err(Inbound::Unreadable),
    }
}

/// The body, at most `cap` bytes: in one piece when `Content-Length`
/// declares a length within the cap, else through the stream with a
/// running count.
async fn read_body(
    req: &EdgeRequest,
    content_length: Option<&str>,
    cap: usize,
) -> Result<Vec<u8>, BodyError<worker::Error>> {
    let declared = content_length
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n <= cap) {
        let promise = req
            .array_buffer()
            .map_err(|e| BodyError::Stream(worker::Error::from(e)))?;
        let buffer = worker::wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(|e| BodyError::Stream(worker::Error::from(e)))?;
        let bytes = worker::js_sys::Uint8Array::new(&buffer);
        // The runtime holds the body to its declared length; the count is
        // checked again all the same.
        if bytes.length() as usize > cap {
            return Err(BodyError::TooLarge);
        }
        return Ok(bytes.to_vec());
    }
    // The rare path (no length, or one past the cap): worker's stream
    // adapter over the same request.
    let stream = worker::Request::from(<EdgeRequest as Clone>::clone(req))
        .stream()
        .map_err(BodyError::Stream)?;
    read_capped(Box::pin(stream), content_length, cap).await
}

/// All of a request's headers in one crossing: `JSON.stringify` of the
/// `[name, value]` pairs, parsed back by serde (rather than one JS call per
/// entry, name and value). `None` if the runtime handed over something
/// that is not that shape.
fn from_edge_headers(headers: &worker::worker_sys::web_sys::Headers) -> Option<Headers> {
    let pairs = worker::js_sys::Array::from(headers.as_ref());
    let json = worker::js_sys::JSON::stringify(&pairs).ok()?.as_string()?;
    let pairs: Vec<(String, String)> = serde_json::from_str(&json).ok()?;
    Some(pairs.into_iter().collect())
}

/// Converts the core's response: one `append` per header (measured
/// cheaper in workerd than handing the `Headers` constructor a parsed
/// JSON array of pairs), the body copied once (none at all when empty, as
/// before).
pub fn to_edge_response(response: http::Response) -> worker::Result<EdgeResponse> {
    let headers = worker::worker_sys::web_sys::Headers::new()?;
    for (name, value) in response.headers.iter() {
        headers.append(name, value)?;
    }
    let init = worker::worker_sys::web_sys::ResponseInit::new();
    init.set_status(response.status);
    init.set_headers(&headers);
    Ok(if response.body.is_empty() {
        EdgeResponse::new_with_opt_str_and_init(None, &init)?
    } else {
        let body = worker::js_sys::Uint8Array::from(response.body.as_slice());
        EdgeResponse::new_with_opt_buffer_source_and_init(Some(&body), &init)?
    })
}
