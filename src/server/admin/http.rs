//! HTTP/1.x on the admin port: requests parsed with `httparse`, responses framed here.
//!
//! Deliberately small: GET and HEAD only, no request bodies, one request per connection
//! (every response says `Connection: close`; keep-alive would save nothing worth its state
//! for a page that polls a few times a second). A request whose head passes
//! `MAX_REQUEST_BYTES` is refused with 431 before it is complete, so a client can never make
//! the loop buffer more than that. Pure functions: no sockets, so they are tested directly.

use std::fmt::Write as _;

use bytes::BytesMut;

/// Largest request head (request line + headers) accepted.
pub const MAX_REQUEST_BYTES: usize = 16 << 10;
/// Headers beyond this many are refused (431).
const MAX_HEADERS: usize = 48;
/// Longest request target.
const MAX_TARGET: usize = 4096;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// A parsed request: the decoded path and query pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The `Origin` header, for CORS decisions.
    pub origin: Option<String>,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Why a request cannot be served; each maps to one 4xx status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("request head larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("request target longer than {MAX_TARGET} bytes")]
    UriTooLong,
    #[error("malformed request: {0}")]
    Malformed(String),
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::TooLarge | HttpError::TooManyHeaders => 431,
            HttpError::UriTooLong => 414,
            HttpError::Malformed(_) => 400,
        }
    }
}

/// Parse the request at the start of `buf`. `Ok(None)`: incomplete, read more.
pub fn parse(buf: &[u8]) -> Result<Option<Request>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let status = match req.parse(buf) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    if status.is_partial() {
        return if buf.len() >= MAX_REQUEST_BYTES { Err(HttpError::TooLarge) } else { Ok(None) };
    }
    if status.unwrap() > MAX_REQUEST_BYTES {
        return Err(HttpError::TooLarge);
    }
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        _ => Method::Other,
    };
    let target = req.path.ok_or_else(|| HttpError::Malformed("no request target".into()))?;
    if target.len() > MAX_TARGET {
        return Err(HttpError::UriTooLong);
    }
    if !target.starts_with('/') {
        return Err(HttpError::Malformed("request target must start with '/'".into()));
    }
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(raw_path, false)?;
    let mut query = Vec::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query.push((percent_decode(k, true)?, percent_decode(v, true)?));
    }
    let mut origin = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("origin") {
            origin = std::str::from_utf8(h.value).ok().map(str::to_string);
        }
    }
    Ok(Some(Request { method, path, query, origin }))
}

/// `%XX` decoding (and `+` as space in query parts); the result must be UTF-8.
fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, HttpError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let v = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| HttpError::Malformed(format!("bad percent-encoding in {s:?}")))?;
                out.push(v);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| HttpError::Malformed(format!("{s:?} is not UTF-8 once decoded")))
}

/// A response about to be framed.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";
pub const JS: &str = "text/javascript; charset=utf-8";
pub const CSS: &str = "text/css; charset=utf-8";
/// Prometheus text exposition format 0.0.4.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type, body: body.into(), headers: Vec::new() }
    }

    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        // Serializing a `Value` cannot fail (string keys only).
        let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
        body.push(b'\n');
        Response::new(status, JSON, body)
    }

    /// A 4xx/5xx with a one-line JSON reason.
    pub fn error(status: u16, reason: &str) -> Response {
        Response::json(status, &serde_json::json!({ "error": reason, "status": status }))
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Append the framed response to `out` (no body for HEAD).
    pub fn write(&self, head_only: bool, out: &mut BytesMut) {
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (k, v) in &self.headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_get_with_query_and_origin() {
        let r = parse(b"GET /api/tree?path=%2Fa%20b&x=1+2&flag HTTP/1.1\r\nHost: h\r\nOrigin: http://127.0.0.1:1\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/api/tree");
        assert_eq!(r.param("path"), Some("/a b"));
        assert_eq!(r.param("x"), Some("1 2"));
        assert_eq!(r.param("flag"), Some(""));
        assert_eq!(r.origin.as_deref(), Some("http://127.0.0.1:1"));
    }

    #[test]
    fn incomplete_until_the_blank_line() {
        let full = b"GET / HTTP/1.0\r\nHost: h\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse(full).expect("valid").is_some());
    }

    #[test]
    fn bad_requests_map_to_4xx() {
        for (input, status) in [
            (&b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..], 400),
            (b"GET /%zz HTTP/1.1\r\n\r\n", 400),
            (b"GET /%ff HTTP/1.1\r\n\r\n", 400),
            (b"GET x HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/9.9\r\n\r\n", 400),
        ] {
            let e = parse(input).expect_err("must fail");
            assert_eq!(e.status(), status, "{input:?}: {e}");
        }
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: y\r\n")).collect();
        let e = parse(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).expect_err("too many");
        assert_eq!(e.status(), 431);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_REQUEST_BYTES));
        assert_eq!(parse(big.as_bytes()).expect_err("too big").status(), 431);
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET));
        assert_eq!(parse(long.as_bytes()).expect_err("too long").status(), 414);
    }

    #[test]
    fn response_framing() {
        let mut out = BytesMut::new();
        Response::new(200, TEXT, "hi").header("Access-Control-Allow-Origin", "*").write(false, &mut out);
        let s = String::from_utf8(out.to_vec()).expect("utf8");
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"), "{s}");
        assert!(s.contains("Content-Length: 2\r\n") && s.contains("Access-Control-Allow-Origin: *\r\n"), "{s}");
        assert!(s.ends_with("\r\n\r\nhi"), "{s}");
        let mut head = BytesMut::new();
        Response::new(200, TEXT, "hi").write(true, &mut head);
        assert!(head.ends_with(b"\r\n\r\n"));
    }
}
