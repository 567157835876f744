//! Transfer settings that rarely change between requests (timeouts, TLS verification, HTTP
//! version, body cap, user agent, client certificate): checked and converted to C strings once
//! per session, not once per request.

use std::ffi::CString;

use pyo3::prelude::*;

use crate::error::Error;
use crate::ffi::HttpVersion;
use crate::session::parse_http_version;

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

fn c_string(what: &str, s: String) -> Result<CString, Error> {
    if s.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(Error::Value(format!("{what} must not contain CR or LF")));
    }
    CString::new(s).map_err(|_| Error::Value(format!("{what} must not contain NUL")))
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
                ca_file: ca_file.map(|f| c_string("CA file", f)).transpose()?,
                ca_path: ca_path.map(|p| c_string("CA path", p)).transpose()?,
            }
        } else {
            Verify::Off
        };
        let cert = match cert {
            Some((key, cert)) => Some((
                c_string("cert key path", key)?,
                c_string("cert path", cert)?,
            )),
            None => None,
        };
        Ok(TransferOptions {
            timeout_ms: seconds_to_ms("timeout", timeout)?,
            connect_timeout_ms: seconds_to_ms("connect_timeout", connect_timeout)?,
            verify,
            http_version: parse_http_version(http_version)?,
            max_body: max_body_size.unwrap_or(0),
            user_agent: c_string("user agent", user_agent)?,
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
    fn paths_with_line_breaks_are_refused() {
        assert!(c_string("CA file", "/a\nb".into()).is_err());
        assert!(c_string("CA file", "/a\0b".into()).is_err());
        assert!(c_string("CA file", "/etc/ssl/ca.pem".into()).is_ok());
    }
}
