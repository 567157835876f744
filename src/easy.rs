//! One transfer: a request turned into easy-handle options, and a finished handle turned into a
//! response. Input is checked here, before anything can reach the wire.

use std::cell::RefCell;
use std::ffi::CString;
use std::rc::Rc;

use pyo3::prelude::*;

use crate::error::{Error, BODY_TOO_LARGE, WEIRD_SERVER_REPLY};
use crate::ffi::{CURLcode, Easy, Share};
use crate::options::{HttpVersion, TransferOptions, Verify};
use crate::response::RawResponse;

/// Idle easy handles of one session, already attached to its share: reused instead of made anew
/// for every request (`curl_easy_reset` keeps their buffers and caches).
pub struct EasyPool {
    idle: Vec<Easy>,
    share: Rc<Share>,
}

/// More idle handles than this are freed: a burst should not pin memory for the session's life.
const MAX_IDLE: usize = 256;

thread_local! {
    /// Handles of closed sessions, detached from their shares, for the next sessions made on
    /// this thread: a load test makes a session per journey, and making an easy handle costs
    /// more than re-attaching one. Thread-local because handles never leave their thread.
    static SPARE: RefCell<Vec<Easy>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a finished handle for a later session, or frees it when enough are kept.
pub fn spare(mut easy: Easy) {
    if easy.detach_share().is_ok() {
        let _ = SPARE.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < MAX_IDLE {
                spare.push(easy);
            }
        });
    }
}

impl EasyPool {
    pub fn new(share: Rc<Share>) -> EasyPool {
        EasyPool {
            idle: Vec::new(),
            share,
        }
    }

    pub fn get(&mut self) -> Result<Easy, Error> {
        if let Some(easy) = self.idle.pop() {
            return Ok(easy);
        }
        let spare = SPARE.try_with(|s| s.borrow_mut().pop()).ok().flatten();
        let mut easy = match spare {
            Some(easy) => easy,
            None => Easy::new().map_err(Error::Internal)?,
        };
        easy.attach_share(self.share.clone()).map_err(curl_error)?;
        Ok(easy)
    }

    pub fn put(&mut self, easy: Easy) {
        if self.idle.len() < MAX_IDLE {
            self.idle.push(easy);
        }
    }
}

impl Drop for EasyPool {
    fn drop(&mut self) {
        // The session is gone: its idle handles serve the next sessions instead.
        for easy in self.idle.drain(..) {
            spare(easy);
        }
    }
}

/// A request as the Python layer hands it over, already typed.
pub struct RequestSpec<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub header_lines: Vec<String>,
    pub body: Option<Vec<u8>>,
    pub cookie: Option<&'a str>,
    pub options: &'a TransferOptions,
    /// False: this transfer neither resumes nor stores TLS sessions (`tls_sessions="off"`).
    pub tls_session_cache: bool,
}

fn curl_error(code: CURLcode) -> Error {
    Error::Curl {
        code,
        text: crate::ffi::strerror(code),
    }
}

fn has_ctl(s: &str) -> bool {
    s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Control characters a field value may not hold (RFC 9110 5.5: only HTAB among them).
fn has_field_ctl(s: &str) -> bool {
    s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

fn cstring(what: &str, s: &str) -> Result<CString, Error> {
    if has_ctl(s) {
        return Err(Error::Value(format!(
            "{what} must not contain CR, LF or NUL: {s:?}"
        )));
    }
    CString::new(s).map_err(|_| Error::Value(format!("{what} must not contain NUL")))
}

/// RFC 9110 token characters: what a method or header name may consist of.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub fn check_method(method: &str) -> Result<(), Error> {
    if is_token(method) {
        Ok(())
    } else {
        Err(Error::Value(format!("invalid HTTP method: {method:?}")))
    }
}

/// Only http:// and https:// URLs, with no control characters or spaces.
pub fn check_url(url: &str) -> Result<(), Error> {
    if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(Error::Value(format!(
            "URL must not contain whitespace or control characters: {url:?}"
        )));
    }
    let scheme_end = url
        .find("://")
        .ok_or_else(|| Error::Value(format!("URL has no scheme: {url:?}")))?;
    let scheme = url[..scheme_end].to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(Error::Value(format!(
            "unsupported URL scheme {scheme:?}: only http and https are allowed"
        )));
    }
    // The authority runs to the first "/", "?" or "#"; its host part (after any userinfo)
    // must not be empty, or curl would take a path segment for the host.
    let rest = &url[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() || host_port.starts_with(':') {
        return Err(Error::Value(format!("URL has no host: {url:?}")));
    }
    Ok(())
}

/// "Name: value" (or "Name:" to remove a header curl would add): a token name, no CR/LF/NUL.
pub fn check_header_line(line: &str) -> Result<(), Error> {
    if has_field_ctl(line) {
        return Err(Error::Value(format!(
            "header must not contain control characters (CR, LF, NUL, ...): {line:?}"
        )));
    }
    // "Name: value" as the Python layer writes it, "Name:" (remove a header curl would add) or
    // "Name;" (curl's way to send an empty value). A colon inside the name ("Host:evil: v")
    // would otherwise make the text after it a value of another header.
    let name = match line.split_once(':') {
        Some((name, rest)) if rest.is_empty() || rest.starts_with(' ') => name,
        Some(_) => "",
        None => line.strip_suffix(';').unwrap_or(""),
    };
    if !is_token(name) {
        return Err(Error::Value(format!("invalid header name in {line:?}")));
    }
    Ok(())
}

/// The body's framing is ours to state: a caller's Content-Length is replaced by the real one
/// (a wrong one would desynchronise the connection), and only "chunked" may be asked for as a
/// Transfer-Encoding.
pub(crate) fn framing_checked(lines: Vec<String>) -> Result<Vec<String>, Error> {
    let mut kept = Vec::with_capacity(lines.len());
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .unwrap_or((line.trim_end_matches(';'), ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        if name.eq_ignore_ascii_case("transfer-encoding")
            && !value.trim().eq_ignore_ascii_case("chunked")
        {
            return Err(Error::Value(format!(
                "Transfer-Encoding {:?} is not supported: only \"chunked\" may be requested",
                value.trim()
            )));
        }
        kept.push(line);
    }
    Ok(kept)
}

fn header_named(lines: &[String], name: &str) -> bool {
    lines.iter().any(|l| {
        l.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    })
}

fn may_multiplex(url: &str, version: HttpVersion) -> bool {
    let https = url.len() > 8 && url[..8].eq_ignore_ascii_case("https://");
    match version {
        HttpVersion::Http11 => false,
        HttpVersion::Http2PriorKnowledge => true,
        HttpVersion::Auto => https,
        HttpVersion::Http2 => https,
    }
}

/// `ACURL_RS_CURL_VERBOSE=1` makes libcurl trace every transfer to stderr (diagnostics only).
fn curl_verbose() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("ACURL_RS_CURL_VERBOSE").is_some_and(|v| v == "1"))
}

/// Sets every option of one request on a freshly reset handle.
pub fn prepare(easy: &mut Easy, spec: RequestSpec<'_>) -> Result<(), Error> {
    check_method(spec.method)?;
    check_url(spec.url)?;
    for line in &spec.header_lines {
        check_header_line(line)?;
    }
    let url = cstring("URL", spec.url)?;
    let mut lines = framing_checked(spec.header_lines)?;
    let set = |r: Result<(), CURLcode>| r.map_err(curl_error);

    set(easy.set_cstr(curl_sys::CURLOPT_URL, &url))?;
    if curl_verbose() {
        set(easy.set_long(curl_sys::CURLOPT_VERBOSE, 1))?;
    }
    if may_multiplex(spec.url, spec.options.http_version) {
        // Wait for a connection being set up to say whether it multiplexes, instead of
        // opening one per request of a burst. Pointless where HTTP/2 cannot be negotiated
        // (cleartext without prior knowledge, or HTTP/1.1 asked for): there it would only
        // serialise the burst on the first connection.
        set(easy.set_long(curl_sys::CURLOPT_PIPEWAIT, 1))?;
    }
    let options = spec.options;
    set(easy.set_long(
        curl_sys::CURLOPT_HTTP_VERSION,
        options.http_version.as_long(),
    ))?;
    if !options.user_agent.is_empty() {
        set(easy.set_cstr(curl_sys::CURLOPT_USERAGENT, &options.user_agent))?;
    }

    let method = spec.method;
    let body = match (method, spec.body) {
        // HEAD never carries a body and must not wait for one (CURLOPT_NOBODY).
        ("HEAD", _) => None,
        (_, Some(body)) => Some(body),
        // POST, PUT and PATCH without a body still say Content-Length: 0.
        ("POST" | "PUT" | "PATCH", None) => Some(Vec::new()),
        (_, None) => None,
    };
    let plain_get = method == "GET" && body.is_none();
    if method == "HEAD" {
        set(easy.set_long(curl_sys::CURLOPT_NOBODY, 1))?;
    }
    if let Some(body) = body {
        set(easy.set_body(body))?;
        if !header_named(&lines, "expect") {
            // No 100-continue round trip: load tests want the body sent at once.
            lines.push("Expect:".to_string());
        }
    }
    if !plain_get && method != "POST" && method != "HEAD" {
        set(easy.set_cstr(curl_sys::CURLOPT_CUSTOMREQUEST, &cstring("method", method)?))?;
    }

    if !lines.is_empty() {
        let c_lines = lines
            .iter()
            .map(|l| cstring("header", l))
            .collect::<Result<Vec<_>, _>>()?;
        easy.set_headers(&c_lines).map_err(Error::Internal)?;
    }
    if let Some(cookie) = spec.cookie {
        if has_field_ctl(cookie) {
            return Err(Error::Value(format!(
                "cookie must not contain control characters: {cookie:?}"
            )));
        }
        set(easy.set_cstr(curl_sys::CURLOPT_COOKIE, &cstring("cookie", cookie)?))?;
    }
    if let Some((key, cert)) = &options.cert {
        set(easy.set_cstr(curl_sys::CURLOPT_SSLKEY, key))?;
        set(easy.set_cstr(curl_sys::CURLOPT_SSLCERT, cert))?;
    }
    match &options.verify {
        Verify::Off => {
            set(easy.set_long(curl_sys::CURLOPT_SSL_VERIFYPEER, 0))?;
            set(easy.set_long(curl_sys::CURLOPT_SSL_VERIFYHOST, 0))?;
        }
        Verify::On { ca_file, ca_path } => {
            set(easy.set_long(curl_sys::CURLOPT_SSL_VERIFYPEER, 1))?;
            set(easy.set_long(curl_sys::CURLOPT_SSL_VERIFYHOST, 2))?;
            if let Some(f) = ca_file {
                set(easy.set_cstr(curl_sys::CURLOPT_CAINFO, f))?;
            }
            if let Some(p) = ca_path {
                set(easy.set_cstr(curl_sys::CURLOPT_CAPATH, p))?;
            }
        }
    }
    if options.timeout_ms > 0 {
        set(easy.set_long(
            curl_sys::CURLOPT_TIMEOUT_MS,
            options.timeout_ms as std::ffi::c_long,
        ))?;
    }
    if options.connect_timeout_ms > 0 {
        set(easy.set_long(
            curl_sys::CURLOPT_CONNECTTIMEOUT_MS,
            options.connect_timeout_ms as std::ffi::c_long,
        ))?;
    }
    set(easy.set_max_body(options.max_body))?;
    if options.no_proxy {
        set(easy.set_cstr(curl_sys::CURLOPT_PROXY, c""))?;
    }
    // Every content coding this curl decodes (gzip and deflate: zlib is built in, brotli and
    // zstd are not), as acurl asked for: servers compress for us as they did for acurl.
    set(easy.set_cstr(curl_sys::CURLOPT_ACCEPT_ENCODING, c""))?;
    if !spec.tls_session_cache {
        set(easy.set_long(curl_sys::CURLOPT_SSL_SESSIONID_CACHE, 0))?;
    }
    Ok(())
}

/// Turns a finished handle into a response, or the error that ended it.
pub fn complete(py: Python<'_>, easy: &mut Easy, code: CURLcode) -> Result<Py<RawResponse>, Error> {
    if code != curl_sys::CURLE_OK {
        if easy.buffers().body_too_large || code == BODY_TOO_LARGE {
            return Err(Error::Curl {
                code: BODY_TOO_LARGE,
                text: format!(
                    "response body larger than max_body_size ({} bytes)",
                    easy.buffers().max_body
                ),
            });
        }
        return Err(Error::Curl {
            code,
            text: easy.error_text(code),
        });
    }
    if !easy.buffers().headers_complete {
        return Err(Error::Curl {
            code: WEIRD_SERVER_REPLY,
            text: "the server closed the connection before the end of the response headers".into(),
        });
    }
    let mut info = easy.info().map_err(curl_error)?;
    if info.num_connects == 0 {
        // A reused connection made no handshake for this transfer: nothing was resumed.
        info.tls_resumed = None;
    }
    let body = easy.take_body();
    let header = easy.take_header();
    Py::new(py, RawResponse::new(py, info, &body, &header))
        .map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls() {
        assert!(check_url("http://127.0.0.1/").is_ok());
        assert!(check_url("HTTPS://localhost:8443/x?y").is_ok());
        for bad in [
            "file:///etc/passwd",
            "gopher://h/",
            "dict://h/",
            "ftp://h/",
            "127.0.0.1/",
            "http://",
            "http://h/\r\nX: y",
            "http:///name/x",
            "http://user@/x",
            "http://:80/",
            "http://h/ a",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_injection_is_refused() {
        assert!(check_header_line("X-A: b").is_ok());
        assert!(check_header_line("Expect:").is_ok());
        assert!(check_header_line("X-Empty;").is_ok());
        for bad in [
            "Host:evil: v",
            "X-A:b",
            "X-A: b\r\nX-B: c",
            "X-A: b\nc",
            "X-A: b\0",
            "X-A: a\x01b",
            "X-A: a\x7fb",
            "Bad Name: v",
            ": v",
            "noval",
        ] {
            assert!(check_header_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn callers_cannot_frame_the_body() {
        let kept = framing_checked(vec!["Content-Length: 1".into(), "X-A: b".into()]).unwrap();
        assert_eq!(kept, vec!["X-A: b".to_string()]);
        assert!(framing_checked(vec!["Transfer-Encoding: gzip".into()]).is_err());
        assert!(framing_checked(vec!["transfer-encoding: chunked".into()]).is_ok());
    }

    #[test]
    fn pipewait_only_where_http2_can_be_had() {
        assert!(may_multiplex("https://h/", HttpVersion::Auto));
        assert!(may_multiplex("HTTPS://h/", HttpVersion::Http2));
        assert!(!may_multiplex("http://h/", HttpVersion::Auto));
        assert!(!may_multiplex("https://h/", HttpVersion::Http11));
        assert!(may_multiplex("http://h/", HttpVersion::Http2PriorKnowledge));
    }

    #[test]
    fn methods_are_tokens() {
        assert!(check_method("GET").is_ok());
        assert!(check_method("PROPFIND").is_ok());
        for bad in ["", "GET /", "G\r\nET", "GE\0T"] {
            assert!(check_method(bad).is_err(), "{bad:?}");
        }
    }
}
