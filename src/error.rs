//! One error type for the crate, one table from CURLcode to the Python exception class, and one
//! conversion to `PyErr`. The classes live in `acurl_rs/errors.py` (docstrings, stubs, builtin
//! bases such as `TimeoutError`); Rust only names them.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

use crate::ffi::CURLcode;

/// Codes we raise ourselves for conditions libcurl has no code for.
pub const BODY_TOO_LARGE: CURLcode = 63; // CURLE_FILESIZE_EXCEEDED
pub const WEIRD_SERVER_REPLY: CURLcode = 8; // CURLE_WEIRD_SERVER_REPLY
pub const OPERATION_TIMEDOUT: CURLcode = 28; // CURLE_OPERATION_TIMEDOUT

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
    match code {
        // Schemes are checked before a request starts, so code 1 from curl means the server
        // answered in a protocol version curl does not speak ("Unsupported HTTP/1 subversion").
        1 => "ProtocolError",
        3 => "InvalidURLError",
        5 | 6 => "ResolveError",
        7 | 45 => "ConnectError",
        28 => "AcurlTimeoutError",
        35 | 53 | 54 | 58 | 59 | 60 | 64 | 66 | 77 | 80 | 82 | 83 | 90 | 91 | 98 => "TLSError",
        16 | 92 => "HTTP2Error",
        WEIRD_SERVER_REPLY | 18 | 52 | 55 | 56 | 61 | 95 | 100 => "ProtocolError",
        47 => "RequestError",
        BODY_TOO_LARGE => "BodyTooLargeError",
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
