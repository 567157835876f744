//! One error type for the crate, one table from CURLcode to the Python exception class, and one
//! conversion to `PyErr`. The classes live in `acurl_rs/errors.py` (docstrings, stubs, builtin
//! bases such as `TimeoutError`); Rust only names them.
//!
//! Every curl code the crate or the Python layer means is named here once, by curl.h's name;
//! Python reads the ones it needs as `_acurl_rs` constants (`EXPORTED_CODES`, `RETRYABLE`).

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

use crate::ffi::CURLcode;

/// curl.h codes that curl-sys lacks or spells as in older curl.
mod newer {
    use crate::ffi::CURLcode;
    /// curl-sys still calls it CURLE_FTP_WEIRD_SERVER_REPLY.
    pub const WEIRD_SERVER_REPLY: CURLcode = 8;
    pub const HTTP3: CURLcode = 95;
    pub const SSL_CLIENTCERT: CURLcode = 98;
    pub const TOO_LARGE: CURLcode = 100;
}

pub use newer::WEIRD_SERVER_REPLY;
pub const OPERATION_TIMEDOUT: CURLcode = curl_sys::CURLE_OPERATION_TIMEDOUT;
/// What a body past `max_body_size` fails with (curl's own code for a too-large download).
pub const BODY_TOO_LARGE: CURLcode = curl_sys::CURLE_FILESIZE_EXCEEDED;

/// The connection died under the request (empty reply, send or receive failure, HTTP/2
/// framing or stream error such as REFUSED_STREAM or GOAWAY): a busy server closing a
/// kept-alive connection. Sent again when nothing of the response had arrived
/// (`AcurlError.retryable`) and the method is idempotent.
pub const RETRYABLE: [CURLcode; 5] = [
    curl_sys::CURLE_HTTP2,
    curl_sys::CURLE_GOT_NOTHING,
    curl_sys::CURLE_SEND_ERROR,
    curl_sys::CURLE_RECV_ERROR,
    curl_sys::CURLE_HTTP2_STREAM,
];

/// The codes the Python layer names, as `_acurl_rs` module constants.
pub const EXPORTED_CODES: [(&str, CURLcode); 3] = [
    (
        "CURLE_UNSUPPORTED_PROTOCOL",
        curl_sys::CURLE_UNSUPPORTED_PROTOCOL,
    ),
    ("CURLE_OPERATION_TIMEDOUT", OPERATION_TIMEDOUT),
    (
        "CURLE_TOO_MANY_REDIRECTS",
        curl_sys::CURLE_TOO_MANY_REDIRECTS,
    ),
];

#[derive(Debug)]
pub enum Error {
    /// A transfer failed inside libcurl: the code and curl's error-buffer text.
    Curl {
        code: CURLcode,
        text: String,
    },
    /// The session or wrapper was closed while the request was in flight or before it started.
    Closed(&'static str),
    /// Bad input from the caller, caught before anything is sent.
    Value(String),
    Type(String),
    /// A libcurl setup call failed (out of memory and the like).
    Internal(String),
    /// Rust code panicked inside a libcurl callback (a bug of ours): the panic's message.
    Panic(String),
}

impl Error {
    /// The one way to make an error from a CURLcode a libcurl call returned: the code and
    /// curl's text for it.
    pub fn from_code(code: CURLcode) -> Error {
        Error::Curl {
            code,
            text: crate::ffi::strerror(code),
        }
    }

    /// A panic caught in a libcurl callback, to be raised on the transfer or call it stopped.
    pub fn from_panic(payload: crate::ffi::PanicPayload) -> Error {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        Error::Panic(format!(
            "internal error: Rust code panicked inside a libcurl callback: {message}"
        ))
    }
}

/// The Python exception class name in `acurl_rs.errors` for a curl code.
pub fn class_name(code: CURLcode) -> &'static str {
    use curl_sys::*;
    match code {
        // Schemes are checked before a request starts, so code 1 from curl means the server
        // answered in a protocol version curl does not speak ("Unsupported HTTP/1 subversion").
        CURLE_UNSUPPORTED_PROTOCOL => "ProtocolError",
        CURLE_URL_MALFORMAT => "InvalidURLError",
        CURLE_COULDNT_RESOLVE_PROXY | CURLE_COULDNT_RESOLVE_HOST => "ResolveError",
        CURLE_COULDNT_CONNECT | CURLE_INTERFACE_FAILED => "ConnectError",
        CURLE_OPERATION_TIMEDOUT => "AcurlTimeoutError",
        CURLE_SSL_CONNECT_ERROR
        | CURLE_SSL_ENGINE_NOTFOUND
        | CURLE_SSL_ENGINE_SETFAILED
        | CURLE_SSL_CERTPROBLEM
        | CURLE_SSL_CIPHER
        | CURLE_PEER_FAILED_VERIFICATION
        | CURLE_USE_SSL_FAILED
        | CURLE_SSL_ENGINE_INITFAILED
        | CURLE_SSL_CACERT_BADFILE
        | CURLE_SSL_SHUTDOWN_FAILED
        | CURLE_SSL_CRL_BADFILE
        | CURLE_SSL_ISSUER_ERROR
        | CURLE_SSL_PINNEDPUBKEYNOTMATCH
        | CURLE_SSL_INVALIDCERTSTATUS
        | newer::SSL_CLIENTCERT => "TLSError",
        CURLE_HTTP2 | CURLE_HTTP2_STREAM => "HTTP2Error",
        newer::WEIRD_SERVER_REPLY
        | CURLE_PARTIAL_FILE
        | CURLE_GOT_NOTHING
        | CURLE_SEND_ERROR
        | CURLE_RECV_ERROR
        | CURLE_BAD_CONTENT_ENCODING
        | newer::HTTP3
        | newer::TOO_LARGE => "ProtocolError",
        CURLE_TOO_MANY_REDIRECTS => "RequestError",
        CURLE_FILESIZE_EXCEEDED => "BodyTooLargeError",
        _ => "AcurlError",
    }
}

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS_MODULE
        .get_or_try_init(py, || Ok(PyModule::import(py, "acurl_rs.errors")?.unbind()))
        .map(|m| m.bind(py))
}

impl Error {
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let built = match self {
            Error::Curl { code, text } => errors_module(py)
                .and_then(|m| m.getattr(class_name(code)))
                .and_then(|cls| cls.call1((code, text))),
            Error::Closed(what) => errors_module(py)
                .and_then(|m| m.getattr("SessionClosedError"))
                .and_then(|cls| cls.call1((what,))),
            Error::Panic(message) => errors_module(py)
                .and_then(|m| m.getattr("RequestPanicError"))
                .and_then(|cls| cls.call1((message,))),
            Error::Value(msg) => return PyValueError::new_err(msg),
            Error::Type(msg) => return PyTypeError::new_err(msg),
            Error::Internal(msg) => return PyRuntimeError::new_err(msg),
        };
        match built {
            Ok(exc) => PyErr::from_value(exc),
            Err(err) => err,
        }
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        Python::attach(|py| err.into_pyerr(py))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_maps_each_category() {
        assert_eq!(class_name(7), "ConnectError");
        assert_eq!(class_name(6), "ResolveError");
        assert_eq!(class_name(28), "AcurlTimeoutError");
        assert_eq!(class_name(60), "TLSError");
        assert_eq!(class_name(92), "HTTP2Error");
        assert_eq!(class_name(56), "ProtocolError");
        assert_eq!(class_name(63), "BodyTooLargeError");
        assert_eq!(class_name(1), "ProtocolError");
        assert_eq!(class_name(9999), "AcurlError");
    }

    #[test]
    fn the_named_codes_are_curls_numbers() {
        // The values are curl's ABI; these are the numbers Python saw before they were named.
        assert_eq!(RETRYABLE, [16, 52, 55, 56, 92]);
        assert_eq!(OPERATION_TIMEDOUT, 28);
        assert_eq!((WEIRD_SERVER_REPLY, BODY_TOO_LARGE), (8, 63));
        assert_eq!(
            EXPORTED_CODES.map(|(_, code)| code),
            [1, OPERATION_TIMEDOUT, 47]
        );
        // Every code of the old numeric table still maps as it did.
        let table: &[(&[CURLcode], &str)] = &[
            (&[1, 8, 18, 52, 55, 56, 61, 95, 100], "ProtocolError"),
            (&[3], "InvalidURLError"),
            (&[5, 6], "ResolveError"),
            (&[7, 45], "ConnectError"),
            (&[28], "AcurlTimeoutError"),
            (
                &[35, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91, 98],
                "TLSError",
            ),
            (&[16, 92], "HTTP2Error"),
            (&[47], "RequestError"),
            (&[63], "BodyTooLargeError"),
            (&[0, 2, 23, 42, 99, 101], "AcurlError"),
        ];
        for (codes, class) in table {
            for code in *codes {
                assert_eq!(class_name(*code), *class, "code {code}");
            }
        }
    }

    #[test]
    fn panic_payloads_keep_their_message() {
        let text = |e: Error| match e {
            Error::Panic(m) => m,
            other => panic!("{other:?}"),
        };
        assert!(text(Error::from_panic(Box::new("boom"))).ends_with(": boom"));
        assert!(text(Error::from_panic(Box::new(String::from("b2")))).ends_with(": b2"));
        assert!(text(Error::from_panic(Box::new(7))).ends_with("a panic without a message"));
    }
}
