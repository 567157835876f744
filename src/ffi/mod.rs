//! The FFI boundary: the only module allowed to use `unsafe`.
//!
//! Every libcurl handle is wrapped in an RAII type here (`Easy`, `Multi`, `Share`) with typed
//! setters and getters; the rest of the crate is safe Rust over these types. Each `unsafe` block
//! carries a `// SAFETY:` comment; the invariants are collected in docs/DESIGN.md.
#![allow(unsafe_code)]

mod easy;
mod multi;
mod share;
mod sockets;
mod tls;

use std::ffi::{c_char, CStr};
use std::sync::Once;

pub use curl_sys::CURLcode;
pub use easy::{Easy, Running, Sink};
pub use multi::{
    multi_strerror, Attached, Multi, MultiEvents, SocketInterest, CSELECT_IN, CSELECT_OUT,
    SOCKET_TIMEOUT,
};
pub use share::{Share, ShareScope};
pub use sockets::{add_close_listener, is_connection_socket, is_unix_socket, SocketCloseListener};

/// Constants newer than the bindings in `curl-sys` (values from curl 8.22's curl.h).
pub(crate) mod consts {
    use curl_sys::{CURLoption, CURLINFO};
    const CURLOPTTYPE_STRINGPOINT: CURLoption = 10000;
    pub const CURLINFO_STRING: CURLINFO = 0x100000;
    pub const CURLINFO_LONG: CURLINFO = 0x200000;
    pub const CURLINFO_OFF_T: CURLINFO = 0x600000;
    pub const CURLINFO_TYPEMASK: CURLINFO = 0xf00000;
    pub const CURLOPT_PROTOCOLS_STR: CURLoption = CURLOPTTYPE_STRINGPOINT + 318;
    pub const CURLOPT_REDIR_PROTOCOLS_STR: CURLoption = CURLOPTTYPE_STRINGPOINT + 319;
    pub const CURLINFO_HTTP_VERSION: CURLINFO = CURLINFO_LONG + 46;
    pub const CURLINFO_TOTAL_TIME_T: CURLINFO = CURLINFO_OFF_T + 50;
    pub const CURLINFO_NAMELOOKUP_TIME_T: CURLINFO = CURLINFO_OFF_T + 51;
    pub const CURLINFO_CONNECT_TIME_T: CURLINFO = CURLINFO_OFF_T + 52;
    pub const CURLINFO_PRETRANSFER_TIME_T: CURLINFO = CURLINFO_OFF_T + 53;
    pub const CURLINFO_STARTTRANSFER_TIME_T: CURLINFO = CURLINFO_OFF_T + 54;
    pub const CURLINFO_APPCONNECT_TIME_T: CURLINFO = CURLINFO_OFF_T + 56;
    pub const CURLINFO_XFER_ID: CURLINFO = CURLINFO_OFF_T + 63;
    pub const CURLINFO_CONN_ID: CURLINFO = CURLINFO_OFF_T + 64;
    pub const CURLINFO_QUEUE_TIME_T: CURLINFO = CURLINFO_OFF_T + 65;
    pub const CURLINFO_SIZE_UPLOAD_T: CURLINFO = CURLINFO_OFF_T + 7;
    pub const CURLINFO_SIZE_DOWNLOAD_T: CURLINFO = CURLINFO_OFF_T + 8;
    const CURLINFO_PTR: CURLINFO = 0x400000;
    const CURLINFO_SOCKET: CURLINFO = 0x500000;
    pub const CURLINFO_ACTIVESOCKET: CURLINFO = CURLINFO_SOCKET + 44;
    pub const CURLINFO_TLS_SSL_PTR: CURLINFO = CURLINFO_PTR + 45;
    /// `curl_sslbackend` value of OpenSSL (and its forks).
    pub const CURLSSLBACKEND_OPENSSL: std::ffi::c_int = 1;

    /// curl.h's `struct curl_tlssessioninfo` (commented out in curl-sys).
    #[repr(C)]
    pub struct CurlTlsSessionInfo {
        pub backend: std::ffi::c_int,
        pub internals: *mut std::ffi::c_void,
    }
}

static GLOBAL_INIT: Once = Once::new();

/// `curl_global_init` exactly once per process, before any handle is made.
pub fn global_init() {
    GLOBAL_INIT.call_once(|| {
        // SAFETY: called once, guarded by `Once`, before any other libcurl call of ours.
        let rc = unsafe { curl_sys::curl_global_init(curl_sys::CURL_GLOBAL_ALL) };
        assert_eq!(rc, curl_sys::CURLE_OK, "curl_global_init failed");
    });
}

/// curl's own text for an error code (`curl_easy_strerror`).
pub fn strerror(code: CURLcode) -> String {
    // SAFETY: curl_easy_strerror returns a pointer to a static NUL-terminated string for any code.
    unsafe { cstr_to_string(curl_sys::curl_easy_strerror(code)) }.unwrap_or_default()
}

/// Copies a C string owned by libcurl into Rust, or None for NULL.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string valid for the duration of the call.
unsafe fn cstr_to_string(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: non-null and NUL-terminated per the caller's contract.
        Some(
            unsafe { CStr::from_ptr(ptr) }
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// What the bundled libcurl was built with: shown by `acurl_rs.curl_version()` / `build_info()`.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub curl: String,
    pub version: String,
    pub ssl: String,
    pub libz: String,
    pub nghttp2: String,
    pub protocols: Vec<String>,
    pub features: Vec<String>,
    pub host: String,
}

pub fn version_info() -> VersionInfo {
    global_init();
    // SAFETY: curl_version_info returns a pointer to static data that lives for the process;
    // the struct layout for CURLVERSION_TENTH is the one curl-sys declares (curl >= 7.72).
    unsafe {
        let full = cstr_to_string(curl_sys::curl_version()).unwrap_or_default();
        let info = &*curl_sys::curl_version_info(curl_sys::CURLVERSION_TENTH);
        VersionInfo {
            curl: full,
            version: cstr_to_string(info.version).unwrap_or_default(),
            ssl: cstr_to_string(info.ssl_version).unwrap_or_default(),
            libz: cstr_to_string(info.libz_version).unwrap_or_default(),
            nghttp2: cstr_to_string(info.nghttp2_version).unwrap_or_default(),
            protocols: cstr_array(info.protocols),
            features: cstr_array(info.feature_names),
            host: cstr_to_string(info.host).unwrap_or_default(),
        }
    }
}

/// # Safety
/// `list` must be NULL or a NULL-terminated array of valid C strings.
unsafe fn cstr_array(list: *const *const c_char) -> Vec<String> {
    let mut out = Vec::new();
    if list.is_null() {
        return out;
    }
    let mut i = 0;
    loop {
        // SAFETY: the array is NULL-terminated, so every index up to the terminator is valid.
        let item = unsafe { *list.add(i) };
        if item.is_null() {
            break;
        }
        // SAFETY: each entry is a valid NUL-terminated static string.
        out.extend(unsafe { cstr_to_string(item) });
        i += 1;
    }
    out
}

static PROCESS_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn refresh_process_id() {
    PROCESS_ID.store(std::process::id(), std::sync::atomic::Ordering::Relaxed);
}

/// This process's id without a system call per use (getpid is not cached by glibc): read once,
/// and again in a forked child through a pthread_atfork handler.
pub fn process_id() -> u32 {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        refresh_process_id();
        // SAFETY: registers a child-side handler that only stores getpid() into an atomic
        // (async-signal-safe); the function lives for the whole process.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(refresh_process_id)) };
        assert_eq!(rc, 0, "pthread_atfork failed");
    });
    PROCESS_ID.load(std::sync::atomic::Ordering::Relaxed)
}

/// True in a process forked from the one that made a handle. Such a child must not clean up
/// inherited handles: curl would write TLS close_notify or HTTP/2 GOAWAY to sockets it shares
/// with the parent. It leaks them instead (its copy of the memory, nothing of the parent's).
pub(crate) fn forked_since(owner_pid: u32) -> bool {
    process_id() != owner_pid
}

/// What a caught panic carries: usually its message, as a `&str` or a `String`.
pub type PanicPayload = Box<dyn std::any::Any + Send + 'static>;

/// Runs `f`, catching a panic so that it never unwinds into C. The payload comes back to the
/// trampoline, which keeps it for the transfer or call it belongs to: raised there, not lost.
pub(crate) fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, PanicPayload> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
}

thread_local! {
    /// A panic caught in a trampoline that belongs to no transfer or multi of ours (socket
    /// open/close hooks, SSL_CTX setup): raised by this thread's next multi call.
    static STRAY_PANIC: std::cell::RefCell<Option<PanicPayload>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` for a trampoline with no owner to keep a panic: a panic gives `None` (so it never
/// unwinds into C) and its payload is kept for [`take_stray_panic`] (the first one, if several).
pub(crate) fn no_unwind<R>(f: impl FnOnce() -> R) -> Option<R> {
    match catch_panic(f) {
        Ok(r) => Some(r),
        Err(payload) => {
            let _ = STRAY_PANIC.try_with(|kept| {
                if let Ok(mut kept) = kept.try_borrow_mut() {
                    kept.get_or_insert(payload);
                }
            });
            None
        }
    }
}

/// The panic an ownerless trampoline of this thread caught, if one did.
pub(crate) fn take_stray_panic() -> Option<PanicPayload> {
    STRAY_PANIC
        .try_with(|kept| kept.try_borrow_mut().ok()?.take())
        .ok()
        .flatten()
}
