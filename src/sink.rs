//! Where one response's bytes go while curl receives it, and the rules that shape it: which
//! header block is kept, where it ends, how much body is accepted and how much is reserved
//! up front. The FFI trampolines only hand bytes to `ResponseSink`; every decision is here.

use crate::ffi::{Easy, Running, Sink};

/// The easy handle every transfer of ours uses.
pub type Handle = Easy<ResponseSink>;

/// A server's Content-Length is trusted for preallocation up to this much; past it the buffer
/// grows as data really arrives.
const MAX_PREALLOCATION: u64 = 64 << 20;

#[derive(Default)]
pub struct ResponseSink {
    body: Vec<u8>,
    /// The last header block only: a status line starts a new block, so interim 1xx blocks drop.
    header: Vec<u8>,
    /// 0: no limit. Past it the body is refused, which fails the transfer (CURLE_WRITE_ERROR).
    max_body: u64,
    body_too_large: bool,
    /// The blank line that ends a header block arrived (curl also accepts a block cut off by
    /// the server closing the connection; we do not).
    headers_complete: bool,
    /// Asked at the first status line of a transfer: whether its TLS handshake resumed a
    /// session (None: not TLS, or not known).
    tls_resumed: Option<bool>,
    tls_checked: bool,
}

impl ResponseSink {
    /// The body limit of the next transfer (0: none).
    pub fn limit_body(&mut self, max_body: u64) {
        self.max_body = max_body;
    }

    pub fn max_body(&self) -> u64 {
        self.max_body
    }

    /// The body was refused for passing `max_body`.
    pub fn body_too_large(&self) -> bool {
        self.body_too_large
    }

    pub fn headers_complete(&self) -> bool {
        self.headers_complete
    }

    pub fn tls_resumed(&self) -> Option<bool> {
        self.tls_resumed
    }

    /// Whether any response byte arrived: a request that got none may be retried safely.
    pub fn response_started(&self) -> bool {
        !self.header.is_empty() || !self.body.is_empty()
    }

    /// The body and the final header block, leaving both empty.
    pub fn take(&mut self) -> (Vec<u8>, Vec<u8>) {
        (
            std::mem::take(&mut self.body),
            std::mem::take(&mut self.header),
        )
    }
}

impl Sink for ResponseSink {
    fn header(&mut self, line: &[u8], transfer: &Running<'_>) -> bool {
        if line.starts_with(b"HTTP/") {
            if !self.tls_checked {
                self.tls_checked = true;
                self.tls_resumed = transfer.tls_session_reused();
            }
            self.header.clear();
            self.headers_complete = false;
        } else if line == b"\r\n" || line == b"\n" {
            self.headers_complete = true;
        } else if let Some(length) = content_length(line) {
            // Size the body buffer once instead of growing (and copying) it chunk by chunk.
            let cap = if self.max_body > 0 {
                self.max_body
            } else {
                MAX_PREALLOCATION
            };
            if length <= cap.min(MAX_PREALLOCATION) {
                self.body.reserve_exact(length as usize);
            }
        }
        self.header.extend_from_slice(line);
        true
    }

    fn body(&mut self, chunk: &[u8]) -> bool {
        if self.max_body > 0 && (self.body.len() + chunk.len()) as u64 > self.max_body {
            self.body_too_large = true;
            return false;
        }
        self.body.extend_from_slice(chunk);
        true
    }

    fn reset(&mut self) {
        // A new Vec rather than clear(): a large body's allocation is not kept for the next.
        self.body = Vec::new();
        self.header.clear();
        self.max_body = 0;
        self.body_too_large = false;
        self.headers_complete = false;
        self.tls_resumed = None;
        self.tls_checked = false;
    }
}

/// The value of a "Content-Length:" header line, if this is one.
pub(crate) fn content_length(line: &[u8]) -> Option<u64> {
    const NAME: &[u8] = b"content-length:";
    if line.len() <= NAME.len() || !line[..NAME.len()].eq_ignore_ascii_case(NAME) {
        return None;
    }
    std::str::from_utf8(&line[NAME.len()..])
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds header lines as curl would, outside a transfer (so no TLS to ask about).
    fn headers(sink: &mut ResponseSink, lines: &[&[u8]]) {
        for line in lines {
            assert!(sink.header(line, &Running::outside_a_transfer()));
        }
    }

    #[test]
    fn content_length_lines_are_recognised() {
        assert_eq!(content_length(b"Content-Length: 65536\r\n"), Some(65536));
        assert_eq!(content_length(b"content-length:7\r\n"), Some(7));
        assert_eq!(content_length(b"Content-Type: text/plain\r\n"), None);
        assert_eq!(content_length(b"Content-Length: x\r\n"), None);
    }

    #[test]
    fn only_the_last_header_block_is_kept_and_it_must_end() {
        let mut sink = ResponseSink::default();
        headers(&mut sink, &[b"HTTP/1.1 100 Continue\r\n", b"\r\n"]);
        assert!(sink.headers_complete());
        headers(&mut sink, &[b"HTTP/1.1 200 OK\r\n", b"X-A: b\r\n"]);
        assert!(
            !sink.headers_complete(),
            "a new block is open until its blank line"
        );
        headers(&mut sink, &[b"\r\n"]);
        assert!(sink.headers_complete());
        assert!(sink.response_started());
        let (body, header) = sink.take();
        assert!(body.is_empty());
        assert_eq!(header, b"HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n");
        assert_eq!(sink.tls_resumed(), None);
    }

    #[test]
    fn a_body_past_the_limit_is_refused() {
        let mut sink = ResponseSink::default();
        sink.limit_body(4);
        assert!(sink.body(b"abcd"));
        assert!(!sink.body(b"e"));
        assert!(sink.body_too_large());
        sink.reset();
        assert!(!sink.body_too_large() && sink.max_body() == 0);
        assert!(sink.body(&[0; 1000]), "no limit after a reset");
    }

    #[test]
    fn content_length_reserves_the_body_within_the_limits() {
        let mut sink = ResponseSink::default();
        headers(
            &mut sink,
            &[b"HTTP/1.1 200 OK\r\n", b"Content-Length: 5000\r\n"],
        );
        assert!(sink.body.capacity() >= 5000);

        let mut capped = ResponseSink::default();
        capped.limit_body(100);
        headers(
            &mut capped,
            &[b"HTTP/1.1 200 OK\r\n", b"Content-Length: 5000\r\n"],
        );
        assert_eq!(
            capped.body.capacity(),
            0,
            "more than max_body is not reserved"
        );

        let mut huge = ResponseSink::default();
        headers(&mut huge, &[b"Content-Length: 99999999999\r\n"]);
        assert_eq!(
            huge.body.capacity(),
            0,
            "a server's claim past 64 MiB is not trusted"
        );
    }
}
