//! One transfer: a request turned into easy-handle options (input checked first), and a
//! finished handle turned into a response or the error that ended it.

use pyo3::prelude::*;

use crate::checks::{
    c_line, check_header_line, check_method, check_url, framing_checked, has_field_ctl,
};
use crate::error::{Error, BODY_TOO_LARGE, WEIRD_SERVER_REPLY};
use crate::ffi::CURLcode;
use crate::options::{HttpVersion, TransferOptions, Verify};
use crate::response::RawResponse;
use crate::sink::Handle;

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
    /// True in session scope, where every virtual user holds connections of its own and most
    /// of them sit idle: their TLS buffers are given back while idle (~80 KiB each). In the
    /// wrapper's few busy connections that would only cost an allocation per read and write.
    pub release_idle_tls_buffers: bool,
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
pub fn prepare(easy: &mut Handle, spec: RequestSpec<'_>) -> Result<(), Error> {
    check_method(spec.method)?;
    check_url(spec.url)?;
    for line in &spec.header_lines {
        check_header_line(line)?;
    }
    let url = c_line("URL", spec.url)?;
    let mut lines = framing_checked(spec.header_lines)?;
    let set = |r: Result<(), CURLcode>| r.map_err(Error::from_code);

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
        set(easy.set_cstr(curl_sys::CURLOPT_CUSTOMREQUEST, &c_line("method", method)?))?;
    }

    if !lines.is_empty() {
        let c_lines = lines
            .iter()
            .map(|l| c_line("header", l))
            .collect::<Result<Vec<_>, _>>()?;
        easy.set_headers(&c_lines).map_err(Error::Internal)?;
    }
    if let Some(cookie) = spec.cookie {
        if has_field_ctl(cookie) {
            return Err(Error::Value(format!(
                "cookie must not contain control characters: {cookie:?}"
            )));
        }
        set(easy.set_cstr(curl_sys::CURLOPT_COOKIE, &c_line("cookie", cookie)?))?;
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
    easy.sink_mut().limit_body(options.max_body);
    if options.max_body > 0 {
        // curl refuses a body announced as larger at once; the sink stops one that is not.
        set(easy.set_off_t(
            curl_sys::CURLOPT_MAXFILESIZE_LARGE,
            options.max_body as curl_sys::curl_off_t,
        ))?;
    }
    if options.no_proxy {
        set(easy.set_cstr(curl_sys::CURLOPT_PROXY, c""))?;
    }
    // Every content coding this curl decodes (gzip and deflate: zlib is built in, brotli and
    // zstd are not), as acurl asked for: servers compress for us as they did for acurl.
    set(easy.set_cstr(curl_sys::CURLOPT_ACCEPT_ENCODING, c""))?;
    if !spec.tls_session_cache {
        set(easy.set_long(curl_sys::CURLOPT_SSL_SESSIONID_CACHE, 0))?;
    }
    if spec.release_idle_tls_buffers {
        set(easy.release_idle_tls_buffers())?;
    }
    Ok(())
}

/// Turns a finished handle into a response, or the error that ended it.
pub fn complete(
    py: Python<'_>,
    easy: &mut Handle,
    code: CURLcode,
) -> Result<Py<RawResponse>, Error> {
    if let Some(panic) = easy.take_panic() {
        return Err(Error::from_panic(panic)); // it stopped the transfer (CURLE_WRITE_ERROR)
    }
    let sink = easy.sink();
    if code != curl_sys::CURLE_OK {
        if sink.body_too_large() || code == BODY_TOO_LARGE {
            return Err(Error::Curl {
                code: BODY_TOO_LARGE,
                text: format!(
                    "response body larger than max_body_size ({} bytes)",
                    sink.max_body()
                ),
            });
        }
        return Err(Error::Curl {
            code,
            text: easy.error_text(code),
        });
    }
    if !sink.headers_complete() {
        return Err(Error::Curl {
            code: WEIRD_SERVER_REPLY,
            text: "the server closed the connection before the end of the response headers".into(),
        });
    }
    let tls_resumed = sink.tls_resumed();
    let (body, header) = easy.sink_mut().take();
    let response =
        RawResponse::read(py, easy, tls_resumed, &body, &header).map_err(Error::from_code)?;
    Py::new(py, response).map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipewait_only_where_http2_can_be_had() {
        assert!(may_multiplex("https://h/", HttpVersion::Auto));
        assert!(may_multiplex("HTTPS://h/", HttpVersion::Http2));
        assert!(!may_multiplex("http://h/", HttpVersion::Auto));
        assert!(!may_multiplex("https://h/", HttpVersion::Http11));
        assert!(may_multiplex("http://h/", HttpVersion::Http2PriorKnowledge));
    }
}
