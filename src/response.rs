//! The immutable result of one transfer: libcurl's timings and connection facts, read once at
//! completion so the response never keeps the easy handle alive.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::ffi::EasyInfo;

#[pyclass(frozen, module = "acurl_rs._acurl_rs")]
pub struct RawResponse {
    #[pyo3(get)]
    status_code: i64,
    #[pyo3(get)]
    url: String,
    #[pyo3(get)]
    redirect_url: Option<String>,
    #[pyo3(get)]
    primary_ip: String,
    #[pyo3(get)]
    primary_port: i64,
    #[pyo3(get)]
    local_ip: String,
    #[pyo3(get)]
    local_port: i64,
    /// "1.0", "1.1", "2" or "3" (CURLINFO_HTTP_VERSION).
    #[pyo3(get)]
    http_version: &'static str,
    #[pyo3(get)]
    num_connects: i64,
    #[pyo3(get)]
    conn_id: i64,
    #[pyo3(get)]
    xfer_id: i64,
    #[pyo3(get)]
    upload_size: f64,
    #[pyo3(get)]
    download_size: f64,
    #[pyo3(get)]
    namelookup_time: f64,
    #[pyo3(get)]
    connect_time: f64,
    #[pyo3(get)]
    appconnect_time: f64,
    #[pyo3(get)]
    pretransfer_time: f64,
    #[pyo3(get)]
    starttransfer_time: f64,
    #[pyo3(get)]
    total_time: f64,
    #[pyo3(get)]
    queue_time: f64,
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

fn seconds(us: i64) -> f64 {
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

impl RawResponse {
    pub fn new(py: Python<'_>, info: EasyInfo, body: &[u8], header: &[u8]) -> RawResponse {
        RawResponse {
            status_code: info.response_code,
            url: info.effective_url,
            redirect_url: info.redirect_url,
            primary_ip: info.primary_ip,
            primary_port: info.primary_port,
            local_ip: info.local_ip,
            local_port: info.local_port,
            http_version: http_version_name(info.http_version),
            num_connects: info.num_connects,
            conn_id: info.conn_id,
            xfer_id: info.xfer_id,
            upload_size: info.size_upload as f64,
            download_size: info.size_download as f64,
            namelookup_time: seconds(info.namelookup_us),
            connect_time: seconds(info.connect_us),
            appconnect_time: seconds(info.appconnect_us),
            pretransfer_time: seconds(info.pretransfer_us),
            starttransfer_time: seconds(info.starttransfer_us),
            total_time: seconds(info.total_us),
            queue_time: seconds(info.queue_us),
            tls_resumed: info.tls_resumed,
            body: PyBytes::new(py, body).unbind(),
            header: PyBytes::new(py, header).unbind(),
        }
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
        assert_eq!(seconds(1_500_000), 1.5);
    }
}
