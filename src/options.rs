//! Transfer settings that rarely change between requests (timeouts, TLS verification, HTTP
//! version, body cap, user agent, client certificate): checked and converted to C strings once
//! per session, not once per request.

use std::ffi::{c_long, CString};

use pyo3::prelude::*;

use crate::checks::c_line;
use crate::error::Error;

/// The HTTP version a request asks for, as the Python layer spells it ("auto", "1.1", "2",
/// "2-prior-knowledge").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/2 over TLS when the server offers it by ALPN, HTTP/1.1 in clear text.
    Auto,
    Http11,
    Http2,
    Http2PriorKnowledge,
}

impl HttpVersion {
    pub fn parse(s: &str) -> Result<HttpVersion, Error> {
        match s {
            "auto" => Ok(HttpVersion::Auto),
            "1.1" => Ok(HttpVersion::Http11),
            "2" => Ok(HttpVersion::Http2),
            "2-prior-knowledge" => Ok(HttpVersion::Http2PriorKnowledge),
            _ => Err(Error::Value(format!("Invalid http_version: {s}"))),
        }
    }

    /// The `CURLOPT_HTTP_VERSION` value.
    pub fn as_long(self) -> c_long {
        let v = match self {
            HttpVersion::Auto => curl_sys::CURL_HTTP_VERSION_2TLS,
            HttpVersion::Http11 => curl_sys::CURL_HTTP_VERSION_1_1,
            HttpVersion::Http2 => curl_sys::CURL_HTTP_VERSION_2_0,
            HttpVersion::Http2PriorKnowledge => curl_sys::CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
        };
        c_long::from(v)
    }
}

/// TLS verification for a transfer.
pub enum Verify {
    Off,
    /// Verify against these CA sources (found by the Python side: env, system paths, certifi).
    On {
        ca_file: Option<CString>,
        ca_path: Option<CString>,
    },
}

#[pyclass(frozen, module = "acurl_rs._acurl_rs")]
pub struct TransferOptions {
    pub timeout_ms: i64,
    pub connect_timeout_ms: i64,
    pub verify: Verify,
    pub http_version: HttpVersion,
    pub max_body: u64,
    pub user_agent: CString,
    pub cert: Option<(CString, CString)>,
    /// No proxy variable was set when the session was made: tell curl so, sparing it the
    /// environment look-ups it would otherwise make for every transfer.
    pub no_proxy: bool,
}

fn seconds_to_ms(what: &str, s: Option<f64>) -> Result<i64, Error> {
    match s {
        None => Ok(0),
        Some(v) if v.is_finite() && v > 0.0 => Ok(((v * 1000.0).ceil() as i64).max(1)),
        Some(v) => Err(Error::Value(format!(
            "{what} must be a positive number of seconds, got {v}"
        ))),
    }
}

#[pymethods]
impl TransferOptions {
    #[new]
    #[pyo3(signature = (timeout, connect_timeout, verify, ca_file, ca_path, http_version,
                        max_body_size, user_agent, cert, no_proxy=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        timeout: Option<f64>,
        connect_timeout: Option<f64>,
        verify: bool,
        ca_file: Option<String>,
        ca_path: Option<String>,
        http_version: &str,
        max_body_size: Option<u64>,
        user_agent: String,
        cert: Option<(String, String)>,
        no_proxy: bool,
    ) -> PyResult<TransferOptions> {
        let verify = if verify {
            Verify::On {
                ca_file: ca_file.map(|f| c_line("CA file", &f)).transpose()?,
                ca_path: ca_path.map(|p| c_line("CA path", &p)).transpose()?,
            }
        } else {
            Verify::Off
        };
        let cert = match cert {
            Some((key, cert)) => {
                Some((c_line("cert key path", &key)?, c_line("cert path", &cert)?))
            }
            None => None,
        };
        Ok(TransferOptions {
            timeout_ms: seconds_to_ms("timeout", timeout)?,
            connect_timeout_ms: seconds_to_ms("connect_timeout", connect_timeout)?,
            verify,
            http_version: HttpVersion::parse(http_version)?,
            max_body: max_body_size.unwrap_or(0),
            user_agent: c_line("user agent", &user_agent)?,
            cert,
            no_proxy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_to_a_millisecond() {
        assert_eq!(seconds_to_ms("t", Some(0.0001)).unwrap(), 1);
        assert_eq!(seconds_to_ms("t", Some(2.5)).unwrap(), 2500);
        assert_eq!(seconds_to_ms("t", None).unwrap(), 0);
        assert!(seconds_to_ms("t", Some(-1.0)).is_err());
        assert!(seconds_to_ms("t", Some(f64::NAN)).is_err());
    }

    #[test]
    fn http_versions_parse_and_bad_ones_are_value_errors() {
        assert_eq!(HttpVersion::parse("2").unwrap(), HttpVersion::Http2);
        assert!(
            matches!(HttpVersion::parse("3"), Err(Error::Value(m)) if m == "Invalid http_version: 3")
        );
    }

    #[test]
    fn http_versions_are_curls_values() {
        assert_eq!(HttpVersion::Auto.as_long(), 4);
        assert_eq!(HttpVersion::Http11.as_long(), 2);
        assert_eq!(HttpVersion::Http2.as_long(), 3);
        assert_eq!(HttpVersion::Http2PriorKnowledge.as_long(), 5);
    }
}
