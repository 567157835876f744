//! RAII wrapper of a libcurl easy handle: typed setters, the body/header write callbacks and
//! the getinfo calls made once a transfer completes.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_long, c_void, CString};
use std::marker::PhantomData;
use std::rc::Rc;

use curl_sys::{curl_off_t, CURLcode, CURLoption, CURL, CURLE_OK, CURLINFO};

use super::consts::*;
use super::share::Share;
use super::{cstr_to_string, no_unwind};

/// Where the write callbacks put a response; boxed so its address is stable while registered.
#[derive(Default)]
pub struct TransferBuffers {
    pub body: Vec<u8>,
    /// The last header block only: a status line starts a new block, so interim 1xx blocks drop.
    pub header: Vec<u8>,
    /// 0: no limit. Past it the write callback fails the transfer (CURLE_WRITE_ERROR).
    pub max_body: u64,
    pub body_too_large: bool,
    /// The blank line that ends a header block arrived (curl also accepts a block cut off by
    /// the server closing the connection; we do not).
    pub headers_complete: bool,
    /// The handle these buffers belong to, so the header callback can ask curl about the
    /// connection (CURLINFO_TLS_SSL_PTR is only valid while the transfer runs).
    handle: Option<std::ptr::NonNull<CURL>>,
    /// Set at the first status line of a transfer: whether its TLS handshake resumed a
    /// session (None: not TLS, or not known).
    pub tls_resumed: Option<bool>,
    tls_checked: bool,
}

/// Everything read from a finished transfer, so the response need not keep the handle.
#[derive(Debug, Clone, Default)]
pub struct EasyInfo {
    pub response_code: i64,
    pub effective_url: String,
    pub redirect_url: Option<String>,
    pub primary_ip: String,
    pub primary_port: i64,
    pub local_ip: String,
    pub local_port: i64,
    pub http_version: i64,
    pub num_connects: i64,
    pub conn_id: i64,
    pub xfer_id: i64,
    pub size_upload: i64,
    pub size_download: i64,
    /// Phase times in microseconds, cumulative from the transfer's start (libcurl semantics).
    pub namelookup_us: i64,
    pub connect_us: i64,
    pub appconnect_us: i64,
    pub pretransfer_us: i64,
    pub starttransfer_us: i64,
    pub total_us: i64,
    pub queue_us: i64,
    /// Whether the connection's TLS handshake resumed a session (None: plain HTTP).
    pub tls_resumed: Option<bool>,
}

struct SList(*mut curl_sys::curl_slist);

impl SList {
    fn from_lines(lines: &[CString]) -> Result<SList, String> {
        let mut list = SList(std::ptr::null_mut());
        for line in lines {
            // SAFETY: `line` is a valid C string (curl copies it); `list.0` is NULL or a list
            // made by curl_slist_append. On failure the old list is still owned by `list`.
            let next = unsafe { curl_sys::curl_slist_append(list.0, line.as_ptr()) };
            if next.is_null() {
                return Err("curl_slist_append failed (out of memory)".into());
            }
            list.0 = next;
        }
        Ok(list)
    }
}

impl Drop for SList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the list was built by curl_slist_append and is not referenced by any
            // handle any more (the owning Easy reset or cleaned up before dropping it).
            unsafe { curl_sys::curl_slist_free_all(self.0) }
        }
    }
}

pub struct Easy {
    raw: *mut CURL,
    buffers: Box<TransferBuffers>,
    errbuf: Box<[u8; curl_sys::CURL_ERROR_SIZE]>,
    headers: Option<SList>,
    post_body: Vec<u8>,
    share: Option<Rc<Share>>,
    owner_pid: u32,
    _not_send: PhantomData<Rc<()>>,
}

extern "C" fn write_body(ptr: *mut c_char, size: usize, nmemb: usize, data: *mut c_void) -> usize {
    let len = size * nmemb;
    no_unwind(|| {
        // SAFETY: `data` is the Box<TransferBuffers> registered as WRITEDATA by `Easy::prepare`,
        // alive and not otherwise borrowed while curl runs the transfer; `ptr` holds `len` bytes.
        let buffers = unsafe { &mut *(data as *mut TransferBuffers) };
        let chunk = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
        if buffers.max_body > 0 && (buffers.body.len() + len) as u64 > buffers.max_body {
            buffers.body_too_large = true;
            return 0;
        }
        buffers.body.extend_from_slice(chunk);
        len
    })
    .unwrap_or(0)
}

extern "C" fn write_header(
    ptr: *mut c_char,
    size: usize,
    nmemb: usize,
    data: *mut c_void,
) -> usize {
    let len = size * nmemb;
    no_unwind(|| {
        // SAFETY: as in `write_body`: HEADERDATA is the same live Box, `ptr` holds `len` bytes.
        let buffers = unsafe { &mut *(data as *mut TransferBuffers) };
        let line = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
        if line.starts_with(b"HTTP/") {
            if !buffers.tls_checked {
                buffers.tls_checked = true;
                buffers.tls_resumed = buffers.handle.and_then(|h| tls_session_reused(h.as_ptr()));
            }
            buffers.header.clear();
            buffers.headers_complete = false;
        } else if line == b"\r\n" || line == b"\n" {
            buffers.headers_complete = true;
        } else if let Some(length) = content_length(line) {
            // Size the body buffer once instead of growing (and copying) it chunk by chunk.
            let cap = if buffers.max_body > 0 {
                buffers.max_body
            } else {
                MAX_PREALLOCATION
            };
            if length <= cap.min(MAX_PREALLOCATION) {
                buffers.body.reserve_exact(length as usize);
            }
        }
        buffers.header.extend_from_slice(line);
        len
    })
    .unwrap_or(0)
}

/// A server's Content-Length is trusted for preallocation up to this much; past it the buffer
/// grows as data really arrives.
const MAX_PREALLOCATION: u64 = 64 << 20;

/// The value of a "Content-Length:" header line, if this is one.
fn content_length(line: &[u8]) -> Option<u64> {
    const NAME: &[u8] = b"content-length:";
    if line.len() <= NAME.len() || !line[..NAME.len()].eq_ignore_ascii_case(NAME) {
        return None;
    }
    std::str::from_utf8(&line[NAME.len()..])
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// For `cargo fuzz`: the Content-Length sniffing of response header lines.
#[cfg(fuzzing)]
pub fn fuzz_content_length(line: &[u8]) {
    let _ = content_length(line);
}

/// Whether the TLS connection a running transfer uses resumed a session: OpenSSL's
/// `SSL_session_reused` on the `SSL*` curl exposes as CURLINFO_TLS_SSL_PTR. None when the
/// connection is not TLS (or the backend is not OpenSSL).
fn tls_session_reused(raw: *mut CURL) -> Option<bool> {
    let mut info: *const CurlTlsSessionInfo = std::ptr::null();
    // SAFETY: `raw` is the live handle whose header callback is running (getinfo is allowed
    // inside callbacks); CURLINFO_TLS_SSL_PTR writes a pointer to a struct curl_tlssessioninfo
    // owned by the handle, valid until the callback returns.
    let rc = unsafe {
        curl_sys::curl_easy_getinfo(
            raw,
            CURLINFO_TLS_SSL_PTR,
            &mut info as *mut *const CurlTlsSessionInfo,
        )
    };
    if rc != CURLE_OK || info.is_null() {
        return None;
    }
    // SAFETY: non-null, points at curl's struct for this handle (see above).
    let info = unsafe { &*info };
    if info.backend != CURLSSLBACKEND_OPENSSL || info.internals.is_null() {
        return None;
    }
    // SAFETY: with the OpenSSL backend, `internals` of CURLINFO_TLS_SSL_PTR is the live `SSL*`
    // of the transfer's connection; SSL_session_reused only reads it.
    let reused =
        unsafe { openssl_sys::SSL_session_reused(info.internals as *mut openssl_sys::SSL) };
    Some(reused == 1)
}

type WriteCallback = extern "C" fn(*mut c_char, usize, usize, *mut c_void) -> usize;

impl Easy {
    pub fn new() -> Result<Easy, String> {
        super::global_init();
        // SAFETY: curl_easy_init has no preconditions; NULL is checked.
        let raw = unsafe { curl_sys::curl_easy_init() };
        if raw.is_null() {
            return Err("curl_easy_init failed".into());
        }
        let mut easy = Easy {
            raw,
            buffers: Box::default(),
            errbuf: Box::new([0; curl_sys::CURL_ERROR_SIZE]),
            headers: None,
            post_body: Vec::new(),
            share: None,
            owner_pid: super::process_id(),
            _not_send: PhantomData,
        };
        easy.buffers.handle = std::ptr::NonNull::new(raw);
        easy.install_base()
            .map_err(|c| format!("easy setup failed: {}", super::strerror(c)))?;
        Ok(easy)
    }

    /// Options every transfer of ours needs; `curl_easy_reset` clears them, so they are redone.
    fn install_base(&mut self) -> Result<(), CURLcode> {
        let data = &mut *self.buffers as *mut TransferBuffers as *mut c_void;
        let body_cb: WriteCallback = write_body;
        let header_cb: WriteCallback = write_header;
        // SAFETY: `raw` is live. ERRORBUFFER points to a CURL_ERROR_SIZE buffer and the
        // WRITEDATA/HEADERDATA pointer to a Box, both owned by `self` and never moved while
        // the handle lives; the callbacks match curl_write_callback and never unwind.
        unsafe {
            check(curl_sys::curl_easy_setopt(
                self.raw,
                curl_sys::CURLOPT_ERRORBUFFER,
                self.errbuf.as_mut_ptr(),
            ))?;
            check(curl_sys::curl_easy_setopt(
                self.raw,
                curl_sys::CURLOPT_WRITEFUNCTION,
                body_cb,
            ))?;
            check(curl_sys::curl_easy_setopt(
                self.raw,
                curl_sys::CURLOPT_WRITEDATA,
                data,
            ))?;
            check(curl_sys::curl_easy_setopt(
                self.raw,
                curl_sys::CURLOPT_HEADERFUNCTION,
                header_cb,
            ))?;
            check(curl_sys::curl_easy_setopt(
                self.raw,
                curl_sys::CURLOPT_HEADERDATA,
                data,
            ))?;
        }
        self.set_long(curl_sys::CURLOPT_NOSIGNAL, 1)?;
        // Turns the cookie engine on (Set-Cookie is parsed only then); "" reads no file.
        self.set_cstr(curl_sys::CURLOPT_COOKIEFILE, c"")?;
        self.set_cstr(CURLOPT_PROTOCOLS_STR, c"http,https")?;
        self.set_cstr(CURLOPT_REDIR_PROTOCOLS_STR, c"http,https")?;
        Ok(())
    }

    /// Back to a clean handle for the next request, keeping its allocations and its share.
    pub fn reset(&mut self) -> Result<(), CURLcode> {
        // SAFETY: `raw` is live and not in a multi (callers remove it first).
        unsafe { curl_sys::curl_easy_reset(self.raw) };
        // curl no longer points at the old header list or body, so both may go now.
        self.headers = None;
        self.post_body.clear();
        self.buffers.body = Vec::new();
        self.buffers.header.clear();
        self.buffers.max_body = 0;
        self.buffers.body_too_large = false;
        self.buffers.headers_complete = false;
        self.buffers.tls_resumed = None;
        self.buffers.tls_checked = false;
        self.errbuf[0] = 0;
        self.install_base()?;
        if let Some(share) = self.share.clone() {
            self.attach_share(share)?;
        }
        Ok(())
    }

    /// Makes this handle use `share`; the handle keeps the share alive (drop order by ownership).
    pub fn attach_share(&mut self, share: Rc<Share>) -> Result<(), CURLcode> {
        // SAFETY: `raw` and the share are live; the Rc stored below outlives the handle's use.
        check(unsafe {
            curl_sys::curl_easy_setopt(self.raw, curl_sys::CURLOPT_SHARE, share.as_ptr())
        })?;
        self.share = Some(share);
        Ok(())
    }

    /// Stops using the share (so the share, and in session scope its connections, can go).
    pub fn detach_share(&mut self) -> Result<(), CURLcode> {
        if self.share.is_some() {
            let none: *mut curl_sys::CURLSH = std::ptr::null_mut();
            // SAFETY: `raw` is live and not in a multi; CURLOPT_SHARE with NULL detaches.
            check(unsafe { curl_sys::curl_easy_setopt(self.raw, curl_sys::CURLOPT_SHARE, none) })?;
            self.share = None;
        }
        Ok(())
    }

    pub fn set_long(&mut self, opt: CURLoption, value: c_long) -> Result<(), CURLcode> {
        // SAFETY: `raw` is live; callers pass only options whose argument type is `long`.
        check(unsafe { curl_sys::curl_easy_setopt(self.raw, opt, value) })
    }

    pub fn set_off_t(&mut self, opt: CURLoption, value: curl_off_t) -> Result<(), CURLcode> {
        // SAFETY: `raw` is live; callers pass only options whose argument type is curl_off_t.
        check(unsafe { curl_sys::curl_easy_setopt(self.raw, opt, value) })
    }

    /// A string option; libcurl copies it (true of every string option we set).
    pub fn set_cstr(&mut self, opt: CURLoption, value: &std::ffi::CStr) -> Result<(), CURLcode> {
        // SAFETY: `raw` is live; `value` is NUL-terminated and curl copies string options.
        check(unsafe { curl_sys::curl_easy_setopt(self.raw, opt, value.as_ptr()) })
    }

    /// `CURLOPT_HTTPHEADER` from "Name: value" lines; the list lives until reset or drop.
    pub fn set_headers(&mut self, lines: &[CString]) -> Result<(), String> {
        let list = SList::from_lines(lines)?;
        // SAFETY: `raw` is live; the list is stored in `self.headers` below and freed only
        // after curl_easy_reset or curl_easy_cleanup, when curl no longer references it.
        check(unsafe {
            curl_sys::curl_easy_setopt(self.raw, curl_sys::CURLOPT_HTTPHEADER, list.0)
        })
        .map_err(super::strerror)?;
        self.headers = Some(list);
        Ok(())
    }

    /// The request body (POSTFIELDS is not copied by curl, so the bytes live in `self`).
    pub fn set_body(&mut self, body: Vec<u8>) -> Result<(), CURLcode> {
        self.post_body = body;
        let len = self.post_body.len() as curl_off_t;
        self.set_off_t(curl_sys::CURLOPT_POSTFIELDSIZE_LARGE, len)?;
        // SAFETY: `raw` is live; the Vec is owned by `self` and not touched until reset/drop.
        check(unsafe {
            curl_sys::curl_easy_setopt(
                self.raw,
                curl_sys::CURLOPT_POSTFIELDS,
                self.post_body.as_ptr(),
            )
        })
    }

    /// Tags the handle so a completion found by `curl_multi_info_read` maps back to its transfer.
    pub fn set_token(&mut self, token: usize) -> Result<(), CURLcode> {
        // SAFETY: CURLOPT_PRIVATE stores an opaque pointer-sized value; it is never dereferenced.
        check(unsafe {
            curl_sys::curl_easy_setopt(self.raw, curl_sys::CURLOPT_PRIVATE, token as *mut c_void)
        })
    }

    pub fn set_max_body(&mut self, max: u64) -> Result<(), CURLcode> {
        self.buffers.max_body = max;
        if max > 0 {
            self.set_off_t(curl_sys::CURLOPT_MAXFILESIZE_LARGE, max as curl_off_t)?;
        }
        Ok(())
    }

    pub fn buffers(&self) -> &TransferBuffers {
        &self.buffers
    }

    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffers.body)
    }

    pub fn take_header(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffers.header)
    }

    /// curl's error-buffer text for the last transfer, else its generic text for `code`.
    pub fn error_text(&self, code: CURLcode) -> String {
        let end = self
            .errbuf
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.errbuf.len());
        let text = String::from_utf8_lossy(&self.errbuf[..end])
            .trim()
            .to_string();
        if text.is_empty() {
            super::strerror(code)
        } else {
            text
        }
    }

    pub(crate) fn as_ptr(&self) -> *mut CURL {
        self.raw
    }

    fn info_long(&self, info: CURLINFO) -> Result<i64, CURLcode> {
        let mut value: c_long = 0;
        // SAFETY: `raw` is live; `info` is a CURLINFO_LONG item, which writes one long.
        check(unsafe { curl_sys::curl_easy_getinfo(self.raw, info, &mut value as *mut c_long) })?;
        Ok(value as i64)
    }

    fn info_off_t(&self, info: CURLINFO) -> Result<i64, CURLcode> {
        let mut value: curl_off_t = 0;
        // SAFETY: `raw` is live; `info` is a CURLINFO_OFF_T item, which writes one curl_off_t.
        check(unsafe {
            curl_sys::curl_easy_getinfo(self.raw, info, &mut value as *mut curl_off_t)
        })?;
        Ok(value as i64)
    }

    fn info_str(&self, info: CURLINFO) -> Result<Option<String>, CURLcode> {
        let mut value: *const c_char = std::ptr::null();
        // SAFETY: `raw` is live; `info` is a CURLINFO_STRING item, which writes a pointer to a
        // string owned by the handle (or NULL), copied out before any other call on the handle.
        check(unsafe {
            curl_sys::curl_easy_getinfo(self.raw, info, &mut value as *mut *const c_char)
        })?;
        // SAFETY: NULL or a NUL-terminated string owned by the live handle.
        Ok(unsafe { cstr_to_string(value) })
    }

    /// The `CURLOPT_PRIVATE` token set by `set_token`.
    pub fn token(&self) -> Result<usize, CURLcode> {
        let mut value: *mut c_void = std::ptr::null_mut();
        // SAFETY: CURLINFO_PRIVATE writes the pointer-sized value stored by `set_token`.
        check(unsafe {
            curl_sys::curl_easy_getinfo(
                self.raw,
                curl_sys::CURLINFO_PRIVATE,
                &mut value as *mut *mut c_void,
            )
        })?;
        Ok(value as usize)
    }

    /// Everything a response reports, read once at completion.
    pub fn info(&self) -> Result<EasyInfo, CURLcode> {
        Ok(EasyInfo {
            response_code: self.info_long(curl_sys::CURLINFO_RESPONSE_CODE)?,
            effective_url: self
                .info_str(curl_sys::CURLINFO_EFFECTIVE_URL)?
                .unwrap_or_default(),
            redirect_url: self.info_str(curl_sys::CURLINFO_REDIRECT_URL)?,
            primary_ip: self
                .info_str(curl_sys::CURLINFO_PRIMARY_IP)?
                .unwrap_or_default(),
            primary_port: self.info_long(curl_sys::CURLINFO_PRIMARY_PORT)?,
            local_ip: self
                .info_str(curl_sys::CURLINFO_LOCAL_IP)?
                .unwrap_or_default(),
            local_port: self.info_long(curl_sys::CURLINFO_LOCAL_PORT)?,
            http_version: self.info_long(CURLINFO_HTTP_VERSION)?,
            num_connects: self.info_long(curl_sys::CURLINFO_NUM_CONNECTS)?,
            conn_id: self.info_off_t(CURLINFO_CONN_ID)?,
            xfer_id: self.info_off_t(CURLINFO_XFER_ID)?,
            size_upload: self.info_off_t(CURLINFO_SIZE_UPLOAD_T)?,
            size_download: self.info_off_t(CURLINFO_SIZE_DOWNLOAD_T)?,
            namelookup_us: self.info_off_t(CURLINFO_NAMELOOKUP_TIME_T)?,
            connect_us: self.info_off_t(CURLINFO_CONNECT_TIME_T)?,
            appconnect_us: self.info_off_t(CURLINFO_APPCONNECT_TIME_T)?,
            pretransfer_us: self.info_off_t(CURLINFO_PRETRANSFER_TIME_T)?,
            starttransfer_us: self.info_off_t(CURLINFO_STARTTRANSFER_TIME_T)?,
            total_us: self.info_off_t(CURLINFO_TOTAL_TIME_T)?,
            queue_us: self.info_off_t(CURLINFO_QUEUE_TIME_T)?,
            tls_resumed: self.buffers.tls_resumed,
        })
    }

    /// The id of the connection this handle uses or used last (-1: none yet).
    pub fn connection_id(&self) -> Result<i64, CURLcode> {
        self.info_off_t(CURLINFO_CONN_ID)
    }

    /// Shuts down (without closing: the fd stays curl's) the socket of the connection this
    /// handle used last, if that connection is still in the pool. curl then sees the
    /// connection end and closes it itself instead of handing it to the next transfer.
    pub fn shut_down_connection(&self) -> bool {
        let mut fd: curl_sys::curl_socket_t = curl_sys::CURL_SOCKET_BAD;
        // SAFETY: `raw` is live; CURLINFO_ACTIVESOCKET writes one curl_socket_t (or
        // CURL_SOCKET_BAD when the last connection is gone).
        let rc = unsafe {
            curl_sys::curl_easy_getinfo(
                self.raw,
                CURLINFO_ACTIVESOCKET,
                &mut fd as *mut curl_sys::curl_socket_t,
            )
        };
        if rc != CURLE_OK || fd == curl_sys::CURL_SOCKET_BAD {
            return false;
        }
        // SAFETY: `fd` is an open socket owned by curl's connection pool; shutdown(2) ends the
        // TCP stream but leaves the descriptor open, so curl keeps sole ownership of closing it
        // and no other file can take its number meanwhile.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) == 0 }
    }

    /// The share's cookie jar as Netscape cookie-file lines (CURLINFO_COOKIELIST).
    pub fn cookie_list(&self) -> Result<Vec<String>, CURLcode> {
        let mut list: *mut curl_sys::curl_slist = std::ptr::null_mut();
        // SAFETY: CURLINFO_COOKIELIST writes a newly allocated slist (or NULL) that we own.
        check(unsafe {
            curl_sys::curl_easy_getinfo(
                self.raw,
                curl_sys::CURLINFO_COOKIELIST,
                &mut list as *mut *mut curl_sys::curl_slist,
            )
        })?;
        let owned = SList(list);
        let mut out = Vec::new();
        let mut node = owned.0;
        while !node.is_null() {
            // SAFETY: `node` walks the list we own; each `data` is a NUL-terminated string.
            unsafe {
                out.extend(cstr_to_string((*node).data));
                node = (*node).next;
            }
        }
        Ok(out)
    }
}

impl Drop for Easy {
    fn drop(&mut self) {
        if super::forked_since(self.owner_pid) {
            return;
        }
        // SAFETY: `raw` is live; the engine removes the handle from its multi before dropping
        // it. The buffers, header list and share it points to are fields of `self`, dropped
        // only after this cleanup returns.
        unsafe { curl_sys::curl_easy_cleanup(self.raw) }
    }
}

fn check(code: CURLcode) -> Result<(), CURLcode> {
    if code == CURLE_OK {
        Ok(())
    } else {
        Err(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::ShareScope;

    #[test]
    fn easy_keeps_its_share_alive_and_drops_first() {
        let share = Rc::new(Share::new(ShareScope::Session, true, true).unwrap());
        let mut easy = Easy::new().unwrap();
        easy.attach_share(share.clone()).unwrap();
        assert_eq!(Rc::strong_count(&share), 2);
        drop(share); // the handle still owns one reference: no CURLSHE_IN_USE possible
        easy.reset().unwrap();
        drop(easy); // curl_easy_cleanup, then the last Rc<Share> -> curl_share_cleanup
    }

    #[test]
    fn cookie_list_of_a_fresh_share_is_empty_and_jar_accepts_lines() {
        let share = Rc::new(Share::new(ShareScope::Wrapper, false, true).unwrap());
        let mut jar = Easy::new().unwrap();
        jar.attach_share(share).unwrap();
        assert!(jar.cookie_list().unwrap().is_empty());
        jar.set_cstr(
            curl_sys::CURLOPT_COOKIELIST,
            c"Set-Cookie: a=b; domain=example.test",
        )
        .unwrap();
        let list = jar.cookie_list().unwrap();
        assert_eq!(list.len(), 1);
        assert!(list[0].ends_with("\ta\tb"), "{list:?}");
    }

    #[test]
    fn error_text_falls_back_to_strerror() {
        let easy = Easy::new().unwrap();
        assert_eq!(easy.error_text(7), "Could not connect to server");
    }

    #[test]
    fn content_length_lines_are_recognised() {
        assert_eq!(content_length(b"Content-Length: 65536\r\n"), Some(65536));
        assert_eq!(content_length(b"content-length:7\r\n"), Some(7));
        assert_eq!(content_length(b"Content-Type: text/plain\r\n"), None);
        assert_eq!(content_length(b"Content-Length: x\r\n"), None);
    }

    #[test]
    fn set_token_roundtrips() {
        let mut easy = Easy::new().unwrap();
        easy.set_token(42).unwrap();
        assert_eq!(easy.token().unwrap(), 42);
    }
}
