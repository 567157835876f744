//! Input checks that guard the wire: what a method, URL, header line or setting may hold before
//! anything reaches libcurl, and the one conversion to a C string. `cargo fuzz` drives these
//! (src/fuzzing.rs).

use std::ffi::CString;

use crate::error::Error;

fn has_ctl(s: &str) -> bool {
    s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Control characters a field value may not hold (RFC 9110 5.5: only HTAB among them).
pub fn has_field_ctl(s: &str) -> bool {
    s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// The one conversion to a C string for libcurl: NUL is refused (C would end the string there).
pub fn c_string(what: &str, s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Value(format!("{what} must not contain NUL")))
}

/// A C string that goes on one line of a request or a setting (URL, method, header, path):
/// CR and LF are refused too, so nothing can start a line of its own.
pub fn c_line(what: &str, s: &str) -> Result<CString, Error> {
    if has_ctl(s) {
        return Err(Error::Value(format!(
            "{what} must not contain CR, LF or NUL: {s:?}"
        )));
    }
    c_string(what, s)
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
    fn c_strings_refuse_nul_and_lines_refuse_breaks() {
        assert!(c_string("cookie line", "a\tb").is_ok());
        assert!(matches!(
            c_string("cookie line", "a\0b"),
            Err(Error::Value(_))
        ));
        assert!(c_line("CA file", "/etc/ssl/ca.pem").is_ok());
        for bad in ["/a\nb", "/a\rb", "/a\0b"] {
            assert!(
                matches!(c_line("CA file", bad), Err(Error::Value(_))),
                "{bad:?}"
            );
        }
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
