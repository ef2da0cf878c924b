//! The little HTTP/1.1 the status listener speaks: one request per connection, GET or HEAD,
//! no body. The request head is read into a fixed buffer (larger heads get 431), the request
//! line is checked strictly (anything else gets 400, other methods 405), and every response
//! closes the connection. Nothing here panics on any input.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head accepted, in bytes. Browsers and Prometheus send well under 2 KiB.
pub const MAX_HEAD: usize = 8 * 1024;

/// Largest request target accepted, in bytes.
const MAX_TARGET: usize = 1024;

/// A parsed request line.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// True for HEAD (the response carries headers only).
    pub head: bool,
    /// The path, without the query string.
    pub path: String,
}

/// Why a request was not accepted, as the status to answer with.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400: not an HTTP/1.x request line.
    BadRequest(&'static str),
    /// 405: a method other than GET and HEAD.
    MethodNotAllowed,
    /// 431: the head is larger than [`MAX_HEAD`].
    TooLarge,
}

/// Reads the request head (up to the blank line) from `io`. `Ok(None)`: the client closed
/// the connection before sending a whole head.
pub async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
) -> std::io::Result<Option<Result<Vec<u8>, Refusal>>> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Ok(Some(Err(Refusal::TooLarge)));
        }
        let n = io.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(None);
        }
        // Only the newly read bytes (and the three before them) can complete the blank line.
        let from = len.saturating_sub(3);
        len += n;
        if let Some(end) = find_blank_line(&buf[from..len]) {
            buf.truncate(from + end);
            return Ok(Some(Ok(buf)));
        }
    }
}

/// The offset just past the first `\r\n\r\n` (or bare `\n\n`) in `bytes`.
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses the request line of `head`.
pub fn parse(head: &[u8]) -> Result<Request, Refusal> {
    let line_end = head
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(Refusal::BadRequest("no request line"))?;
    let line = std::str::from_utf8(&head[..line_end])
        .map_err(|_| Refusal::BadRequest("request line is not UTF-8"))?
        .trim_end_matches('\r');
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
    if target.len() > MAX_TARGET || !target.starts_with('/') {
        return Err(Refusal::BadRequest("malformed request target"));
    }
    if target.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(Refusal::BadRequest("malformed request target"));
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Refusal::MethodNotAllowed),
    };
    let path = target.split(['?', '#']).next().unwrap_or("/").to_owned();
    Ok(Request { head, path })
}

/// A response to write.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The Content-Type.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `body`.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    /// The answer to a refused request.
    pub fn refusal(r: &Refusal) -> Response {
        match r {
            Refusal::BadRequest(why) => Response::text(400, &format!("bad request: {why}")),
            Refusal::MethodNotAllowed => Response::text(405, "method not allowed: use GET or HEAD"),
            Refusal::TooLarge => Response::text(431, "request header fields too large"),
        }
    }

    /// The bytes on the wire: status line, headers, and the body unless `head_only`.
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
             Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; \
             frame-ancestors 'none'\r\n\
             Connection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// The reason phrase of `status`, for the status listener's and the console's responses.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_checked() {
        let ok = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(
            ok,
            Request {
                head: false,
                path: "/metrics".into()
            }
        );
        assert!(parse(b"HEAD / HTTP/1.0\n\n").unwrap().head);
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\n\r\n"),
            Err(Refusal::MethodNotAllowed)
        );
        for bad in [
            &b"GET / HTTP/2\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
            b"GET / HTTP/1.1",
            b"",
        ] {
            assert!(
                matches!(parse(bad), Err(Refusal::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[tokio::test]
    async fn heads_are_bounded() {
        let mut small: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest";
        let head = read_head(&mut small).await.unwrap().unwrap().unwrap();
        assert!(head.ends_with(b"\r\n\r\n"));
        let big = vec![b'a'; MAX_HEAD + 10];
        let mut big: &[u8] = &big;
        assert_eq!(
            read_head(&mut big).await.unwrap().unwrap(),
            Err(Refusal::TooLarge)
        );
        let mut cut: &[u8] = b"GET / HTTP/1.1\r\n";
        assert!(read_head(&mut cut).await.unwrap().is_none());
        let r = Response::text(405, "no").encode(true);
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("Allow: GET, HEAD\r\n") && text.ends_with("\r\n\r\n"));
    }
}
