//! `acurl_rs._acurl_rs`: the native module. This file only registers what the others define.

// The layers, top to bottom (each uses only those below it; src/layers.rs checks it).
mod checks; // input checks that guard the wire; the C-string conversion
mod easy; // one transfer: request -> easy options, finished handle -> response
mod error; // the error enum and the CURLcode -> exception table
mod ffi; // the FFI boundary: RAII handles, typed setopt/getinfo, C trampolines
mod multi; // the asyncio bridge: one multi handle driven by one event loop
mod options; // TransferOptions: per-session settings checked once
mod pool; // idle easy handles, per session and per thread
mod response; // RawResponse: what curl measured, read once at completion
mod session; // NativeSession: the Python-facing session, its share and handle pool
mod share; // a session's share handle and cookie jar
mod sink; // where a response's bytes go, and the rules that shape it

#[cfg(fuzzing)]
pub mod fuzzing;

#[cfg(test)]
mod layers;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet};

/// The bundled libcurl's version line, e.g. "libcurl/8.22.0 OpenSSL/3.5.0 zlib/1.3 nghttp2/1.68.1".
#[pyfunction]
fn curl_version() -> String {
    ffi::version_info().curl
}

/// What this build was made with: curl, TLS library, nghttp2, zlib, protocols and features.
#[pyfunction]
fn build_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let v = ffi::version_info();
    let d = PyDict::new(py);
    d.set_item("curl", v.version)?;
    d.set_item("curl_version", v.curl)?;
    d.set_item("ssl", v.ssl)?;
    d.set_item("nghttp2", v.nghttp2)?;
    d.set_item("libz", v.libz)?;
    d.set_item("host", v.host)?;
    d.set_item("protocols", v.protocols)?;
    d.set_item("features", v.features)?;
    d.set_item("acurl_rs", env!("CARGO_PKG_VERSION"))?;
    d.set_item("static", true)?;
    Ok(d)
}

// The module relies on the GIL: every class is thread-confined (`unsendable`) and libcurl
// callbacks assume no concurrent Python; free-threading is a later, deliberate step.
#[pymodule(gil_used = true)]
fn _acurl_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    ffi::global_init();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(curl_version, m)?)?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    m.add_class::<multi::NativeWrapper>()?;
    m.add_class::<multi::Driver>()?;
    m.add_class::<session::NativeSession>()?;
    m.add_class::<response::RawResponse>()?;
    m.add_class::<options::TransferOptions>()?;
    for (name, code) in error::EXPORTED_CODES {
        m.add(name, code)?;
    }
    m.add(
        "RETRYABLE_CODES",
        PyFrozenSet::new(m.py(), error::RETRYABLE)?,
    )?;
    Ok(())
}
