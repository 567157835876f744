//! The immutable result of one transfer: libcurl's timings and connection facts, read once at
//! completion so the response never keeps the easy handle alive.
//!
//! One row per getinfo value below makes the field, its Python getter and its read from the
//! handle; a new response field is that row and a line in `_acurl_rs.pyi`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::ffi::consts::*;
use crate::ffi::{CURLcode, Easy, Sink};

macro_rules! response_fields {
    ($($(#[$doc:meta])* $name:ident: $ty:ty = $read:ident($info:expr);)*) => {
        #[pyclass(frozen, module = "acurl_rs._acurl_rs")]
        pub struct RawResponse {
            $($(#[$doc])* #[pyo3(get)] $name: $ty,)*
            /// True/False: this transfer's new TLS connection resumed a session or made a full
            /// handshake; None: plain HTTP, or a connection made earlier was reused.
            #[pyo3(get)]
            tls_resumed: Option<bool>,
            #[pyo3(get)]
            body: Py<PyBytes>,
            /// The final header block as received (status line included), undecoded.
            #[pyo3(get)]
            header: Py<PyBytes>,
        }

        impl RawResponse {
            /// Reads every row from a finished handle; `tls_resumed` is what the transfer's
            /// first status line found.
            pub fn read<S: Sink>(
                py: Python<'_>,
                easy: &Easy<S>,
                tls_resumed: Option<bool>,
                body: &[u8],
                header: &[u8],
            ) -> Result<RawResponse, CURLcode> {
                let mut response = RawResponse {
                    $($name: $read(easy, $info)?,)*
                    tls_resumed,
                    body: PyBytes::new(py, body).unbind(),
                    header: PyBytes::new(py, header).unbind(),
                };
                if response.num_connects == 0 {
                    // A reused connection made no handshake for this transfer: nothing resumed.
                    response.tls_resumed = None;
                }
                Ok(response)
            }
        }
    };
}

response_fields! {
    status_code: i64 = long(curl_sys::CURLINFO_RESPONSE_CODE);
    url: String = text(curl_sys::CURLINFO_EFFECTIVE_URL);
    redirect_url: Option<String> = optional_text(curl_sys::CURLINFO_REDIRECT_URL);
    primary_ip: String = text(curl_sys::CURLINFO_PRIMARY_IP);
    primary_port: i64 = long(curl_sys::CURLINFO_PRIMARY_PORT);
    local_ip: String = text(curl_sys::CURLINFO_LOCAL_IP);
    local_port: i64 = long(curl_sys::CURLINFO_LOCAL_PORT);
    /// "1.0", "1.1", "2" or "3" (CURLINFO_HTTP_VERSION).
    http_version: &'static str = version(CURLINFO_HTTP_VERSION);
    num_connects: i64 = long(curl_sys::CURLINFO_NUM_CONNECTS);
    conn_id: i64 = off_t(CURLINFO_CONN_ID);
    xfer_id: i64 = off_t(CURLINFO_XFER_ID);
    upload_size: f64 = size(CURLINFO_SIZE_UPLOAD_T);
    download_size: f64 = size(CURLINFO_SIZE_DOWNLOAD_T);
    /// Phase times in seconds, cumulative from the transfer's start (libcurl semantics).
    namelookup_time: f64 = seconds(CURLINFO_NAMELOOKUP_TIME_T);
    connect_time: f64 = seconds(CURLINFO_CONNECT_TIME_T);
    appconnect_time: f64 = seconds(CURLINFO_APPCONNECT_TIME_T);
    pretransfer_time: f64 = seconds(CURLINFO_PRETRANSFER_TIME_T);
    starttransfer_time: f64 = seconds(CURLINFO_STARTTRANSFER_TIME_T);
    total_time: f64 = seconds(CURLINFO_TOTAL_TIME_T);
    queue_time: f64 = seconds(CURLINFO_QUEUE_TIME_T);
}

// How a row is read: the getinfo type, then the conversion to what Python sees.

fn long<S: Sink>(easy: &Easy<S>, info: curl_sys::CURLINFO) -> Result<i64, CURLcode> {
    easy.info_long(info)
}

fn off_t<S: Sink>(easy: &Easy<S>, info: curl_sys::CURLINFO) -> Result<i64, CURLcode> {
    easy.info_off_t(info)
}

fn text<S: Sink>(easy: &Easy<S>, info: curl_sys::CURLINFO) -> Result<String, CURLcode> {
    Ok(easy.info_str(info)?.unwrap_or_default())
}

fn optional_text<S: Sink>(
    easy: &Easy<S>,
    info: curl_sys::CURLINFO,
) -> Result<Option<String>, CURLcode> {
    easy.info_str(info)
}

/// A byte count (curl_off_t) as the float acurl reported.
fn size<S: Sink>(easy: &Easy<S>, info: curl_sys::CURLINFO) -> Result<f64, CURLcode> {
    Ok(easy.info_off_t(info)? as f64)
}

/// A `*_TIME_T` value (microseconds) in seconds.
fn seconds<S: Sink>(easy: &Easy<S>, info: curl_sys::CURLINFO) -> Result<f64, CURLcode> {
    Ok(microseconds_to_seconds(easy.info_off_t(info)?))
}

fn version<S: Sink>(easy: &Easy<S>, info: curl_sys::CURLINFO) -> Result<&'static str, CURLcode> {
    Ok(http_version_name(easy.info_long(info)?))
}

fn microseconds_to_seconds(us: i64) -> f64 {
    us as f64 / 1_000_000.0
}

/// CURLINFO_HTTP_VERSION's `CURL_HTTP_VERSION_*` value as the version's name.
fn http_version_name(v: i64) -> &'static str {
    const V1_0: i64 = curl_sys::CURL_HTTP_VERSION_1_0 as i64;
    const V1_1: i64 = curl_sys::CURL_HTTP_VERSION_1_1 as i64;
    const V2: i64 = curl_sys::CURL_HTTP_VERSION_2_0 as i64;
    const V3: i64 = curl_sys::CURL_HTTP_VERSION_3 as i64;
    match v {
        V1_0 => "1.0",
        V1_1 => "1.1",
        V2 => "2",
        V3 => "3",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_times_convert() {
        assert_eq!(http_version_name(3), "2");
        assert_eq!(http_version_name(2), "1.1");
        assert_eq!(http_version_name(30), "3");
        assert_eq!(http_version_name(0), "");
        assert_eq!(microseconds_to_seconds(1_500_000), 1.5);
    }
}
