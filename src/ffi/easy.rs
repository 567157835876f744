//! RAII wrapper of a libcurl easy handle: typed setters and getters, and the write-callback
//! trampolines, which only unpack curl's pointers and hand the bytes to a safe [`Sink`].
#![allow(unsafe_code)]

use std::ffi::{c_char, c_long, c_void, CString};
use std::marker::PhantomData;
use std::rc::Rc;

use curl_sys::{curl_off_t, CURLcode, CURLoption, CURL, CURLE_OK, CURLINFO};

use super::consts::*;
use super::share::Share;
use super::{catch_panic, cstr_to_string, PanicPayload};

/// Where a transfer's bytes go, and every rule about them (where a header block ends, how much
/// body is accepted, ...): safe code above the FFI line. curl calls the trampolines; they call
/// these, under `catch_unwind`.
pub trait Sink {
    /// One header line as curl delivers it, CRLF included: status lines of every block (1xx
    /// too) and the blank line that ends a block. False fails the transfer (CURLE_WRITE_ERROR).
    fn header(&mut self, line: &[u8], transfer: &Running<'_>) -> bool;
    /// The next piece of the body. False fails the transfer (CURLE_WRITE_ERROR).
    fn body(&mut self, chunk: &[u8]) -> bool;
    /// Back to the state of a new transfer: called by [`Easy::reset`].
    fn reset(&mut self);
}

/// The transfer whose callback is running, for the questions a sink may ask curl about it.
/// Only a trampoline makes one, and it lives no longer than that callback.
pub struct Running<'a> {
    raw: Option<std::ptr::NonNull<CURL>>,
    _callback: PhantomData<&'a ()>,
}

impl Running<'_> {
    /// Whether the TLS connection this transfer uses resumed a session (None: not TLS, or not
    /// known). Only answerable while the transfer runs (CURLINFO_TLS_SSL_PTR).
    pub fn tls_session_reused(&self) -> Option<bool> {
        tls_session_reused(self.raw?.as_ptr())
    }

    /// For tests of a sink: no transfer to ask about.
    #[cfg(test)]
    pub fn outside_a_transfer() -> Running<'static> {
        Running {
            raw: None,
            _callback: PhantomData,
        }
    }
}

/// What the write callbacks' user data points at: boxed, so its address is stable while the
/// handle is registered.
struct Callbacks<S> {
    raw: *mut CURL,
    sink: S,
    /// A panic caught in a sink call: the transfer stops, and its completion raises this.
    panic: Option<PanicPayload>,
}

impl<S: Sink> Callbacks<S> {
    /// Runs one sink call for a trampoline. A panic fails the transfer instead of unwinding
    /// into C, and its payload is kept for the transfer's completion to raise.
    fn run(&mut self, call: impl FnOnce(&mut S, &Running<'_>) -> bool) -> bool {
        if self.panic.is_some() {
            return false; // curl stops at the first refusal; nothing more reaches the sink
        }
        let running = Running {
            raw: std::ptr::NonNull::new(self.raw),
            _callback: PhantomData,
        };
        match catch_panic(|| call(&mut self.sink, &running)) {
            Ok(accepted) => accepted,
            Err(payload) => {
                self.panic = Some(payload);
                false
            }
        }
    }
}

/// The `len` bytes curl hands a write callback (none when `len` is 0).
///
/// # Safety
/// `ptr` must point to `len` readable bytes that stay valid for the callback's duration.
unsafe fn callback_bytes<'a>(ptr: *const c_char, len: usize) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: non-null with `len` readable bytes, per the caller's contract.
        unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }
    }
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

pub struct Easy<S: Sink> {
    raw: *mut CURL,
    callbacks: Box<Callbacks<S>>,
    errbuf: Box<[u8; curl_sys::CURL_ERROR_SIZE]>,
    headers: Option<SList>,
    post_body: Vec<u8>,
    share: Option<Rc<Share>>,
    owner_pid: u32,
    _not_send: PhantomData<Rc<()>>,
}

extern "C" fn write_body<S: Sink>(
    ptr: *mut c_char,
    size: usize,
    nmemb: usize,
    data: *mut c_void,
) -> usize {
    let len = size * nmemb;
    // SAFETY: `data` is the Box<Callbacks<S>> registered as WRITEDATA by `install_base`, alive
    // and not otherwise borrowed while curl runs the transfer.
    let callbacks = unsafe { &mut *(data as *mut Callbacks<S>) };
    // SAFETY: curl passes `len` readable bytes at `ptr`, valid until the callback returns.
    let chunk = unsafe { callback_bytes(ptr, len) };
    if callbacks.run(|sink, _| sink.body(chunk)) {
        len
    } else {
        0
    }
}

extern "C" fn write_header<S: Sink>(
    ptr: *mut c_char,
    size: usize,
    nmemb: usize,
    data: *mut c_void,
) -> usize {
    let len = size * nmemb;
    // SAFETY: as in `write_body`: HEADERDATA is the same live Box.
    let callbacks = unsafe { &mut *(data as *mut Callbacks<S>) };
    // SAFETY: curl passes `len` readable bytes at `ptr`, valid until the callback returns.
    let line = unsafe { callback_bytes(ptr, len) };
    if callbacks.run(|sink, running| sink.header(line, running)) {
        len
    } else {
        0
    }
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

impl<S: Sink> Easy<S> {
    pub fn new(sink: S) -> Result<Easy<S>, String> {
        super::global_init();
        // SAFETY: curl_easy_init has no preconditions; NULL is checked.
        let raw = unsafe { curl_sys::curl_easy_init() };
        if raw.is_null() {
            return Err("curl_easy_init failed".into());
        }
        let mut easy = Easy {
            raw,
            callbacks: Box::new(Callbacks {
                raw,
                sink,
                panic: None,
            }),
            errbuf: Box::new([0; curl_sys::CURL_ERROR_SIZE]),
            headers: None,
            post_body: Vec::new(),
            share: None,
            owner_pid: super::process_id(),
            _not_send: PhantomData,
        };
        easy.install_base()
            .map_err(|c| format!("easy setup failed: {}", super::strerror(c)))?;
        Ok(easy)
    }

    /// Options every transfer of ours needs; `curl_easy_reset` clears them, so they are redone.
    fn install_base(&mut self) -> Result<(), CURLcode> {
        let data = &mut *self.callbacks as *mut Callbacks<S> as *mut c_void;
        let body_cb: WriteCallback = write_body::<S>;
        let header_cb: WriteCallback = write_header::<S>;
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
        super::sockets::install(self.raw)?;
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
        self.callbacks.sink.reset();
        self.callbacks.panic = None;
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

    /// New connections of this transfer free their TLS buffers while idle
    /// (SSL_MODE_RELEASE_BUFFERS through CURLOPT_SSL_CTX_FUNCTION; cleared by reset).
    pub fn release_idle_tls_buffers(&mut self) -> Result<(), CURLcode> {
        super::tls::install(self.raw)
    }

    /// Tags the handle so a completion found by `curl_multi_info_read` maps back to its transfer.
    pub fn set_token(&mut self, token: usize) -> Result<(), CURLcode> {
        // SAFETY: CURLOPT_PRIVATE stores an opaque pointer-sized value; it is never dereferenced.
        check(unsafe {
            curl_sys::curl_easy_setopt(self.raw, curl_sys::CURLOPT_PRIVATE, token as *mut c_void)
        })
    }

    pub fn sink(&self) -> &S {
        &self.callbacks.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.callbacks.sink
    }

    /// The panic a sink call raised during the last transfer, if one did (it failed the
    /// transfer with CURLE_WRITE_ERROR).
    pub fn take_panic(&mut self) -> Option<PanicPayload> {
        self.callbacks.panic.take()
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

    /// A CURLINFO_LONG item (anything else is refused: the type is in the item's high bits).
    pub fn info_long(&self, info: CURLINFO) -> Result<i64, CURLcode> {
        info_type(info, CURLINFO_LONG)?;
        let mut value: c_long = 0;
        // SAFETY: `raw` is live; `info` is a CURLINFO_LONG item, which writes one long.
        check(unsafe { curl_sys::curl_easy_getinfo(self.raw, info, &mut value as *mut c_long) })?;
        Ok(value as i64)
    }

    /// A CURLINFO_OFF_T item (anything else is refused).
    pub fn info_off_t(&self, info: CURLINFO) -> Result<i64, CURLcode> {
        info_type(info, CURLINFO_OFF_T)?;
        let mut value: curl_off_t = 0;
        // SAFETY: `raw` is live; `info` is a CURLINFO_OFF_T item, which writes one curl_off_t.
        check(unsafe {
            curl_sys::curl_easy_getinfo(self.raw, info, &mut value as *mut curl_off_t)
        })?;
        Ok(value as i64)
    }

    /// A CURLINFO_STRING item, copied out (None for NULL; anything else is refused).
    pub fn info_str(&self, info: CURLINFO) -> Result<Option<String>, CURLcode> {
        info_type(info, CURLINFO_STRING)?;
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

impl<S: Sink> Drop for Easy<S> {
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

/// Refuses a getinfo item whose type (its high bits) is not `want`: the getter would hand curl
/// a pointer to the wrong kind of value.
fn info_type(info: CURLINFO, want: CURLINFO) -> Result<(), CURLcode> {
    if info & CURLINFO_TYPEMASK == want {
        Ok(())
    } else {
        Err(curl_sys::CURLE_BAD_FUNCTION_ARGUMENT)
    }
}

/// A sink for the FFI layer's own tests: accepts and keeps nothing.
#[cfg(test)]
pub(crate) struct Discard;

#[cfg(test)]
impl Sink for Discard {
    fn header(&mut self, _: &[u8], _: &Running<'_>) -> bool {
        true
    }
    fn body(&mut self, _: &[u8]) -> bool {
        true
    }
    fn reset(&mut self) {}
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
        let mut easy = Easy::new(Discard).unwrap();
        easy.attach_share(share.clone()).unwrap();
        assert_eq!(Rc::strong_count(&share), 2);
        drop(share); // the handle still owns one reference: no CURLSHE_IN_USE possible
        easy.reset().unwrap();
        drop(easy); // curl_easy_cleanup, then the last Rc<Share> -> curl_share_cleanup
    }

    #[test]
    fn cookie_list_of_a_fresh_share_is_empty_and_jar_accepts_lines() {
        let share = Rc::new(Share::new(ShareScope::Wrapper, false, true).unwrap());
        let mut jar = Easy::new(Discard).unwrap();
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
        let easy = Easy::new(Discard).unwrap();
        assert_eq!(easy.error_text(7), "Could not connect to server");
    }

    #[test]
    fn getinfo_items_of_another_type_are_refused() {
        let easy = Easy::new(Discard).unwrap();
        assert_eq!(easy.info_long(curl_sys::CURLINFO_RESPONSE_CODE), Ok(0));
        assert_eq!(
            easy.info_long(curl_sys::CURLINFO_EFFECTIVE_URL),
            Err(curl_sys::CURLE_BAD_FUNCTION_ARGUMENT)
        );
        assert_eq!(
            easy.info_str(CURLINFO_CONN_ID),
            Err(curl_sys::CURLE_BAD_FUNCTION_ARGUMENT)
        );
        assert_eq!(
            easy.info_off_t(curl_sys::CURLINFO_RESPONSE_CODE),
            Err(curl_sys::CURLE_BAD_FUNCTION_ARGUMENT)
        );
    }

    #[test]
    fn set_token_roundtrips() {
        let mut easy = Easy::new(Discard).unwrap();
        easy.set_token(42).unwrap();
        assert_eq!(easy.token().unwrap(), 42);
    }
}
