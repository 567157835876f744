//! What we ask of OpenSSL directly about a connection's SSL_CTX.
#![allow(unsafe_code)]

use std::ffi::c_void;

use curl_sys::{CURLcode, CURL, CURLE_OK};

use super::no_unwind;

/// `CURLOPT_SSL_CTX_FUNCTION`: a new connection's SSL_CTX gets SSL_MODE_RELEASE_BUFFERS,
/// so an idle connection gives its TLS read and write buffers (about 80 KB together) back
/// until it is used again; a load generator holds thousands of idle connections.
extern "C" fn ssl_ctx_setup(_: *mut CURL, ssl_ctx: *mut c_void, _: *mut c_void) -> CURLcode {
    no_unwind(|| {
        // SAFETY: with the OpenSSL backend curl passes the connection's `SSL_CTX*`, live for
        // the call; SSL_CTX_set_mode only sets a flag on it.
        unsafe {
            openssl_sys::SSL_CTX_set_mode(
                ssl_ctx as *mut openssl_sys::SSL_CTX,
                openssl_sys::SSL_MODE_RELEASE_BUFFERS,
            )
        };
    });
    CURLE_OK
}

type SslCtxCallback = extern "C" fn(*mut CURL, *mut c_void, *mut c_void) -> CURLcode;

/// Sets the SSL_CTX hook on an easy handle (again after every `curl_easy_reset`).
pub(super) fn install(raw: *mut CURL) -> Result<(), CURLcode> {
    let setup: SslCtxCallback = ssl_ctx_setup;
    // SAFETY: `raw` is a live easy handle; the callback is an `extern "C"` fn with the
    // signature of curl_ssl_ctx_callback, uses no user pointer and never unwinds.
    let rc = unsafe { curl_sys::curl_easy_setopt(raw, curl_sys::CURLOPT_SSL_CTX_FUNCTION, setup) };
    if rc == CURLE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}
