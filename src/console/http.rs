//! The HTTP/1.1 the console speaks: one request per connection, GET, HEAD or POST, a request
//! head of at most [`MAX_HEAD`] bytes and a POST body of at most [`MAX_BODY`] bytes of
//! `application/x-www-form-urlencoded` (announced by Content-Length; chunked bodies are
//! refused). Every response carries the security headers (strict Content-Security-Policy
//! with no script, no framing, no sniffing, no caching) and closes the connection. Nothing
//! here panics on any input.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head accepted, in bytes.
pub const MAX_HEAD: usize = 8 * 1024;

/// Largest request body accepted, in bytes: the console's forms are a few fields.
pub const MAX_BODY: usize = 16 * 1024;

/// Largest request target accepted, in bytes.
const MAX_TARGET: usize = 2048;

/// The console's Content-Security-Policy: only its own stylesheet and images, no script at
/// all, forms only to itself, never inside a frame.
pub const CSP: &str = "default-src 'self'; script-src 'none'; object-src 'none'; \
                       base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET: reads only.
    Get,
    /// HEAD: GET without the body.
    Head,
    /// POST: every change.
    Post,
}

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, without the query string.
    pub path: String,
    /// The query string's pairs, decoded.
    pub query: Vec<(String, String)>,
    /// The form fields of a POST body, decoded.
    pub form: Vec<(String, String)>,
    /// The value of the console's session cookie, if sent.
    pub session: Option<String>,
    /// `Sec-Fetch-Site`, when the browser sent it (`same-origin`, `cross-site`, ...).
    pub fetch_site: Option<String>,
}

impl Request {
    /// The first query parameter `name`, if present and not empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }

    /// The first form field `name`, if present and not empty.
    pub fn field(&self, name: &str) -> Option<&str> {
        first(&self.form, name)
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Why a request was not accepted, as the status to answer with.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400: malformed.
    BadRequest(&'static str),
    /// 405: a method other than GET, HEAD and POST.
    MethodNotAllowed,
    /// 411: a POST without Content-Length.
    LengthRequired,
    /// 413: a body over [`MAX_BODY`].
    TooLarge,
    /// 415: a POST body that is not a urlencoded form.
    UnsupportedType,
    /// 431: a head over [`MAX_HEAD`].
    HeadTooLarge,
}

/// The name of the console's session cookie.
pub const SESSION_COOKIE: &str = "akm_console";

/// Reads and parses one request from `io`. `Ok(None)`: the client closed the connection
/// before a whole request arrived.
pub async fn read_request<R: AsyncRead + Unpin>(
    io: &mut R,
) -> std::io::Result<Option<Result<Request, Refusal>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let head_end = loop {
        if let Some(end) = find_blank_line(&buf) {
            break end;
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Some(Err(Refusal::HeadTooLarge)));
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD {
        return Ok(Some(Err(Refusal::HeadTooLarge)));
    }
    let head = match parse_head(&buf[..head_end]) {
        Ok(h) => h,
        Err(r) => return Ok(Some(Err(r))),
    };
    let mut body = buf.split_off(head_end);
    if head.method == Method::Post {
        let len = match body_length(&head) {
            Ok(l) => l,
            Err(r) => return Ok(Some(Err(r))),
        };
        while body.len() < len {
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
    }
    Ok(Some(head.into_request(&body)))
}

/// The request head's parts the console uses.
struct Head {
    method: Method,
    target: String,
    content_length: Option<String>,
    content_type: Option<String>,
    chunked: bool,
    cookie: Option<String>,
    fetch_site: Option<String>,
}

impl Head {
    fn into_request(self, body: &[u8]) -> Result<Request, Refusal> {
        let (path, query) = match self.target.split_once('?') {
            Some((p, q)) => (p.to_owned(), decode_form(q.as_bytes())?),
            None => (self.target.clone(), Vec::new()),
        };
        let form = if self.method == Method::Post {
            decode_form(body)?
        } else {
            Vec::new()
        };
        let session = self.cookie.as_deref().and_then(session_cookie);
        Ok(Request {
            method: self.method,
            path,
            query,
            form,
            session,
            fetch_site: self.fetch_site,
        })
    }
}

/// The POST body's length: Content-Length, within [`MAX_BODY`], of a urlencoded form.
fn body_length(head: &Head) -> Result<usize, Refusal> {
    if head.chunked {
        return Err(Refusal::LengthRequired);
    }
    let text = head
        .content_length
        .as_deref()
        .ok_or(Refusal::LengthRequired)?;
    // Digits only (`parse` alone would take `+5`).
    let len: usize = Some(text)
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or(Refusal::BadRequest("malformed Content-Length"))?;
    if len > MAX_BODY {
        return Err(Refusal::TooLarge);
    }
    let form = head.content_type.as_deref().is_some_and(|t| {
        t.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !form {
        return Err(Refusal::UnsupportedType);
    }
    Ok(len)
}

/// The offset just past the first `\r\n\r\n` in `bytes`.
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// Parses the request line and the headers the console reads.
fn parse_head(head: &[u8]) -> Result<Head, Refusal> {
    let text = std::str::from_utf8(head).map_err(|_| Refusal::BadRequest("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::BadRequest("malformed request line"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(Refusal::BadRequest("not HTTP/1.0 or HTTP/1.1"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Refusal::BadRequest("malformed method"));
    }
    if target.len() > MAX_TARGET
        || !target.starts_with('/')
        || target.bytes().any(|b| !b.is_ascii_graphic())
    {
        return Err(Refusal::BadRequest("malformed request target"));
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => return Err(Refusal::MethodNotAllowed),
    };
    let mut head = Head {
        method,
        target: target.split('#').next().unwrap_or("/").to_owned(),
        content_length: None,
        content_type: None,
        chunked: false,
        cookie: None,
        fetch_site: None,
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(Refusal::BadRequest("malformed header line"))?;
        let value = value.trim().to_owned();
        match name.to_ascii_lowercase().as_str() {
            // Two lengths could be read two ways (request smuggling): refuse.
            "content-length" if head.content_length.is_some() => {
                return Err(Refusal::BadRequest("more than one Content-Length"))
            }
            "content-length" => head.content_length = Some(value),
            "content-type" => head.content_type = Some(value),
            "transfer-encoding" => head.chunked = true,
            "cookie" => {
                let joined = match head.cookie.take() {
                    Some(c) => format!("{c}; {value}"),
                    None => value,
                };
                head.cookie = Some(joined);
            }
            "sec-fetch-site" => head.fetch_site = Some(value.to_ascii_lowercase()),
            _ => {}
        }
    }
    Ok(head)
}

/// The session cookie's value in a Cookie header: only hex, of the length the console
/// issues, so nothing else is ever looked up.
fn session_cookie(header: &str) -> Option<String> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Decodes `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte); the
/// decoded text must be UTF-8.
pub fn decode_form(bytes: &[u8]) -> Result<Vec<(String, String)>, Refusal> {
    let mut out = Vec::new();
    for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        out.push((percent_decode(k)?, percent_decode(v)?));
        if out.len() > 64 {
            return Err(Refusal::BadRequest("too many form fields"));
        }
    }
    Ok(out)
}

fn percent_decode(bytes: &[u8]) -> Result<String, Refusal> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Two hex digits exactly (`from_str_radix` alone would take `%+1`).
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(Refusal::BadRequest("malformed percent-encoding"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Refusal::BadRequest("form field is not UTF-8"))
}

/// Percent-encodes `text` for a query string value.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response to write.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The Content-Type.
    pub content_type: &'static str,
    /// Extra headers (`Set-Cookie`, `Content-Disposition`), each a whole line
    /// without CRLF; built only from values the console made (never from request text).
    pub headers: Vec<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `body`.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// An HTML page.
    pub fn html(status: u16, body: String) -> Response {
        Response::new(status, "text/html; charset=utf-8", body)
    }

    /// A plain-text response.
    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    /// The answer to a refused request.
    pub fn refusal(r: &Refusal) -> Response {
        match r {
            Refusal::BadRequest(why) => Response::text(400, &format!("bad request: {why}")),
            Refusal::MethodNotAllowed => {
                Response::text(405, "method not allowed: use GET, HEAD or POST")
            }
            Refusal::LengthRequired => Response::text(411, "a POST needs a Content-Length"),
            Refusal::TooLarge => Response::text(413, "request body too large"),
            Refusal::UnsupportedType => {
                Response::text(415, "a POST body must be application/x-www-form-urlencoded")
            }
            Refusal::HeadTooLarge => Response::text(431, "request header fields too large"),
        }
    }

    /// The bytes on the wire: status line, headers (the security headers always), and the
    /// body unless `head_only`.
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
             X-Frame-Options: DENY\r\nContent-Security-Policy: {CSP}\r\n\
             Referrer-Policy: no-referrer\r\nCross-Origin-Opener-Policy: same-origin\r\n\
             Cross-Origin-Resource-Policy: same-origin\r\n\
             Strict-Transport-Security: max-age=31536000\r\nConnection: close\r\n",
            self.status,
            crate::status::http::reason(self.status),
            self.content_type,
            self.body.len()
        );
        for h in &self.headers {
            out.push_str(h);
            out.push_str("\r\n");
        }
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD, POST\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> Result<Request, Refusal> {
        let mut io = bytes;
        read_request(&mut io).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_post_form_is_read_and_decoded() {
        let body = "uid=k%201&name=a+b%3Cc%3E&csrf=x";
        let req = format!(
            "POST /key/activate?x=1 HTTP/1.1\r\nHost: a\r\nCookie: other=1; {SESSION_COOKIE}={}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            "ab".repeat(32),
            body.len()
        );
        let r = read(req.as_bytes()).await.unwrap();
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.path, "/key/activate");
        assert_eq!(r.param("x"), Some("1"));
        assert_eq!(r.field("uid"), Some("k 1"));
        assert_eq!(r.field("name"), Some("a b<c>"));
        assert_eq!(r.session.as_deref(), Some("ab".repeat(32).as_str()));
    }

    #[tokio::test]
    async fn bad_requests_are_refused_with_their_status() {
        let form = "Content-Type: application/x-www-form-urlencoded\r\n";
        for (req, want) in [
            ("PUT / HTTP/1.1\r\n\r\n".to_owned(), 405),
            (format!("POST / HTTP/1.1\r\n{form}\r\n"), 411),
            (
                format!("POST / HTTP/1.1\r\n{form}Transfer-Encoding: chunked\r\n\r\n"),
                411,
            ),
            (
                format!("POST / HTTP/1.1\r\n{form}Content-Length: 99999999\r\n\r\n"),
                413,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx"
                    .to_owned(),
                415,
            ),
            (
                format!(
                    "POST / HTTP/1.1\r\n{form}Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx"
                ),
                400,
            ),
            (
                format!("POST / HTTP/1.1\r\n{form}Content-Length: 3\r\n\r\n%zz"),
                400,
            ),
            (
                format!("POST / HTTP/1.1\r\n{form}Content-Length: 3\r\n\r\n%+1"),
                400,
            ),
            (
                format!("POST / HTTP/1.1\r\n{form}Content-Length: +3\r\n\r\na=b"),
                400,
            ),
            ("GET /\x01 HTTP/1.1\r\n\r\n".to_owned(), 400),
            ("GET / HTTP/2\r\n\r\n".to_owned(), 400),
        ] {
            let got = read(req.as_bytes()).await.unwrap_err();
            assert_eq!(Response::refusal(&got).status, want, "{req:?}");
        }
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(
            read(huge.as_bytes()).await.unwrap_err(),
            Refusal::HeadTooLarge
        );
        // A cookie of another shape is never looked up.
        let odd = format!("GET / HTTP/1.1\r\nCookie: {SESSION_COOKIE}=<x>\r\n\r\n");
        assert!(read(odd.as_bytes()).await.unwrap().session.is_none());
    }

    #[test]
    fn every_response_carries_the_security_headers() {
        let text = String::from_utf8(Response::text(200, "x").encode(false)).unwrap();
        for h in [
            "X-Frame-Options: DENY",
            "X-Content-Type-Options: nosniff",
            "Cache-Control: no-store",
            "frame-ancestors 'none'",
            "script-src 'none'",
        ] {
            assert!(text.contains(h), "{h} missing: {text}");
        }
        assert_eq!(encode_component("a b<&>"), "a%20b%3C%26%3E");
    }
}
