//! Which sockets curl opened for connections, and a hook that runs just before curl closes one.
//!
//! The bridge keeps an idle pooled connection's reader registered when curl says
//! `CURL_POLL_REMOVE` (the next transfer on it asks for it again at once: two loop calls and two
//! `epoll_ctl` saved per request). That is only safe if the registration goes before the socket
//! does: a closed fd's number is reused by the next socket the process opens, and a stale
//! registration would then belong to the wrong file. So every easy handle sets
//! `CURLOPT_SOCKOPTFUNCTION` (told of each connection socket curl creates) and
//! `CURLOPT_CLOSESOCKETFUNCTION` (curl closes connection sockets through it): before closing,
//! the listeners of this thread drop whatever they hold for that fd. Sockets that do not come
//! through here are kept registered only if they are the multi's own wakeup socketpair, which
//! lives exactly as long as the multi (the bridge drops every registration before
//! `curl_multi_cleanup`).
//!
//! Everything is thread-local: curl handles never leave the thread that made them, and a
//! connection may be closed after the wrapper that made it is gone (a session-scope share
//! cleaned up later), so the hook cannot point at any one wrapper.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::{c_int, c_void};
use std::rc::Weak;

use curl_sys::{curl_socket_t, curlsocktype, CURLcode, CURL, CURLE_OK};

use super::no_unwind;

/// Told that curl is about to close `fd`; must forget every registration of it.
pub trait SocketCloseListener {
    fn closing(&self, fd: curl_socket_t);
}

thread_local! {
    static LISTENERS: RefCell<Vec<Weak<dyn SocketCloseListener>>> = const { RefCell::new(Vec::new()) };
    static CONNECTION_SOCKETS: RefCell<HashSet<curl_socket_t>> = RefCell::new(HashSet::new());
}

/// Adds a listener for this thread (dead ones are dropped on the way).
pub fn add_close_listener(listener: Weak<dyn SocketCloseListener>) {
    let _ = LISTENERS.try_with(|l| {
        let mut l = l.borrow_mut();
        l.retain(|w| w.strong_count() > 0);
        l.push(listener);
    });
}

/// True if curl opened `fd` for a connection and will close it through `close_socket`.
pub fn is_connection_socket(fd: curl_socket_t) -> bool {
    CONNECTION_SOCKETS
        .try_with(|s| s.borrow().contains(&fd))
        .unwrap_or(false)
}

/// True if `fd` is a Unix-domain socket: in this build that is the multi's own wakeup
/// socketpair (curl's admin handle watches it while transfers are alive; made by
/// `curl_multi_init`, closed by `curl_multi_cleanup`). Connection sockets are TCP.
pub fn is_unix_socket(fd: curl_socket_t) -> bool {
    let mut domain: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: getsockopt(SO_DOMAIN) writes one int into `domain` and its size into `len`; on
    // a descriptor that is not a socket it fails (ENOTSOCK) and writes nothing.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            &mut domain as *mut c_int as *mut c_void,
            &mut len,
        )
    };
    rc == 0 && domain == libc::AF_UNIX
}

extern "C" fn socket_opened(_: *mut c_void, fd: curl_socket_t, purpose: curlsocktype) -> c_int {
    no_unwind(|| {
        if purpose == curl_sys::CURLSOCKTYPE_IPCXN {
            let _ = CONNECTION_SOCKETS.try_with(|s| s.borrow_mut().insert(fd));
        }
    });
    0 // CURL_SOCKOPT_OK
}

extern "C" fn close_socket(_: *mut c_void, fd: curl_socket_t) -> c_int {
    no_unwind(|| {
        let _ = CONNECTION_SOCKETS.try_with(|s| s.borrow_mut().remove(&fd));
        // Listeners are collected first: one may run Python (loop.remove_reader), which must
        // not happen while this thread-local is borrowed.
        let listeners: Vec<_> = LISTENERS
            .try_with(|l| l.borrow().iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default();
        for listener in listeners {
            listener.closing(fd);
        }
    });
    // SAFETY: curl hands over a socket it opened and no longer uses; closing it is this
    // callback's documented job (CURLOPT_CLOSESOCKETFUNCTION), exactly once per socket.
    unsafe { libc::close(fd) }
}

type SockoptCallback = extern "C" fn(*mut c_void, curl_socket_t, curlsocktype) -> c_int;
type CloseSocketCallback = extern "C" fn(*mut c_void, curl_socket_t) -> c_int;

/// Sets both callbacks on an easy handle (again after every `curl_easy_reset`).
pub(super) fn install(raw: *mut CURL) -> Result<(), CURLcode> {
    let opened: SockoptCallback = socket_opened;
    let close: CloseSocketCallback = close_socket;
    // SAFETY: `raw` is a live easy handle; both callbacks are `extern "C"` fns with the
    // signatures curl documents (curl_sockopt_callback, curl_closesocket_callback), use no
    // clientp, and never unwind.
    let rc = unsafe { curl_sys::curl_easy_setopt(raw, curl_sys::CURLOPT_SOCKOPTFUNCTION, opened) };
    if rc != CURLE_OK {
        return Err(rc);
    }
    // SAFETY: as above.
    let rc =
        unsafe { curl_sys::curl_easy_setopt(raw, curl_sys::CURLOPT_CLOSESOCKETFUNCTION, close) };
    if rc != CURLE_OK {
        return Err(rc);
    }
    Ok(())
}
