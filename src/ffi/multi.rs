//! RAII wrapper of a libcurl multi handle, driven by the socket interface
//! (`curl_multi_socket_action`) with its socket and timer callbacks.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_long, c_void};
use std::marker::PhantomData;
use std::rc::Rc;

use curl_sys::{curl_socket_t, CURLMcode, CURLMoption, CURLcode, CURL, CURLM};

use super::easy::{Easy, Sink};
use super::no_unwind;

pub const SOCKET_TIMEOUT: curl_socket_t = curl_sys::CURL_SOCKET_TIMEOUT;
pub const CSELECT_IN: c_int = curl_sys::CURL_CSELECT_IN;
pub const CSELECT_OUT: c_int = curl_sys::CURL_CSELECT_OUT;

/// The whole interest curl wants on a socket after one socket-callback call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketInterest {
    pub read: bool,
    pub write: bool,
}

impl SocketInterest {
    fn from_what(what: c_int) -> SocketInterest {
        match what {
            curl_sys::CURL_POLL_IN => SocketInterest {
                read: true,
                write: false,
            },
            curl_sys::CURL_POLL_OUT => SocketInterest {
                read: false,
                write: true,
            },
            curl_sys::CURL_POLL_INOUT => SocketInterest {
                read: true,
                write: true,
            },
            // CURL_POLL_REMOVE (and anything unknown): stop watching the socket.
            _ => SocketInterest {
                read: false,
                write: false,
            },
        }
    }
}

/// What the event loop bridge does for curl's callbacks. Implementations may touch only their
/// own state and the event loop's registrations: never a `curl_multi_*` call.
pub trait MultiEvents {
    /// Replace the interest for `fd` with `interest`. Err aborts the current multi call.
    fn socket(&self, fd: curl_socket_t, interest: SocketInterest) -> Result<(), ()>;
    /// Replace the single timer: None = no timer, Some(ms) = fire after ms (0 = at once).
    fn timer(&self, timeout_ms: Option<i64>) -> Result<(), ()>;
}

pub struct Multi {
    raw: *mut CURLM,
    // Boxed twice so curl gets a thin, stable pointer to the trait object.
    events: Box<Box<dyn MultiEvents>>,
    owner_pid: u32,
    _not_send: PhantomData<Rc<()>>,
}

extern "C" fn socket_callback(
    _easy: *mut CURL,
    fd: curl_socket_t,
    what: c_int,
    userp: *mut c_void,
    _socketp: *mut c_void,
) -> c_int {
    no_unwind(|| {
        // SAFETY: userp is the `Box<dyn MultiEvents>` registered as SOCKETDATA by `Multi::new`,
        // owned by the Multi and alive until after curl_multi_cleanup returns.
        let events = unsafe { &*(userp as *const Box<dyn MultiEvents>) };
        match events.socket(fd, SocketInterest::from_what(what)) {
            Ok(()) => 0,
            Err(()) => -1,
        }
    })
    .unwrap_or(-1)
}

extern "C" fn timer_callback(_multi: *mut CURLM, timeout_ms: c_long, userp: *mut c_void) -> c_int {
    no_unwind(|| {
        // SAFETY: as in `socket_callback`: TIMERDATA is the same live boxed trait object.
        let events = unsafe { &*(userp as *const Box<dyn MultiEvents>) };
        let timeout = if timeout_ms < 0 {
            None
        } else {
            #[allow(clippy::useless_conversion)] // c_long is i32 on some targets
            Some(i64::from(timeout_ms))
        };
        match events.timer(timeout) {
            Ok(()) => 0,
            Err(()) => -1,
        }
    })
    .unwrap_or(-1)
}

pub fn multi_strerror(code: CURLMcode) -> String {
    // SAFETY: curl_multi_strerror returns a static string for any code.
    unsafe { super::cstr_to_string(curl_sys::curl_multi_strerror(code)) }.unwrap_or_default()
}

fn check(code: CURLMcode) -> Result<(), CURLMcode> {
    if code == curl_sys::CURLM_OK {
        Ok(())
    } else {
        Err(code)
    }
}

impl Multi {
    pub fn new(events: Box<dyn MultiEvents>) -> Result<Multi, String> {
        super::global_init();
        // SAFETY: curl_multi_init has no preconditions; NULL is checked.
        let raw = unsafe { curl_sys::curl_multi_init() };
        if raw.is_null() {
            return Err("curl_multi_init failed".into());
        }
        let multi = Multi {
            raw,
            events: Box::new(events),
            owner_pid: super::process_id(),
            _not_send: PhantomData,
        };
        let userp = &*multi.events as *const Box<dyn MultiEvents> as *mut c_void;
        let scb: curl_sys::curl_socket_callback = socket_callback;
        let tcb: curl_sys::curl_multi_timer_callback = timer_callback;
        // SAFETY: `raw` is live; the callbacks have curl's documented signatures and never
        // unwind; `userp` points into a Box owned by `multi` that outlives the multi handle.
        unsafe {
            for (opt, ptr) in [
                (curl_sys::CURLMOPT_SOCKETFUNCTION, scb as *mut c_void),
                (curl_sys::CURLMOPT_SOCKETDATA, userp),
                (curl_sys::CURLMOPT_TIMERFUNCTION, tcb as *mut c_void),
                (curl_sys::CURLMOPT_TIMERDATA, userp),
            ] {
                check(curl_sys::curl_multi_setopt(raw, opt, ptr)).map_err(multi_strerror)?;
            }
        }
        Ok(multi)
    }

    pub fn set_long(&self, opt: CURLMoption, value: c_long) -> Result<(), CURLMcode> {
        // SAFETY: `raw` is live; callers pass only options whose argument is a long.
        check(unsafe { curl_sys::curl_multi_setopt(self.raw, opt, value) })
    }

    /// Starts driving `easy`. The caller keeps `easy` alive and unmoved until `remove`.
    pub fn add<S: Sink>(&self, easy: &Easy<S>) -> Result<(), CURLMcode> {
        // SAFETY: both handles are live; the caller's ownership keeps the easy alive until it
        // is removed (the engine removes every easy before the multi is cleaned up).
        check(unsafe { curl_sys::curl_multi_add_handle(self.raw, easy.as_ptr()) })
    }

    pub fn remove<S: Sink>(&self, easy: &Easy<S>) -> Result<(), CURLMcode> {
        // SAFETY: both handles are live; removing a handle that is not added is a checked error.
        check(unsafe { curl_sys::curl_multi_remove_handle(self.raw, easy.as_ptr()) })
    }

    /// Tells curl that `fd` is ready (`ev_bitmask` of CSELECT_*), or that the timer fired
    /// (`fd == SOCKET_TIMEOUT`).
    pub fn socket_action(&self, fd: curl_socket_t, ev_bitmask: c_int) -> Result<(), CURLMcode> {
        let mut running: c_int = 0;
        // SAFETY: `raw` is live; this is never called from inside one of its own callbacks
        // (the bridge schedules work on the event loop instead).
        check(unsafe { curl_sys::curl_multi_socket_action(self.raw, fd, ev_bitmask, &mut running) })
    }

    /// Finished transfers as (token from CURLOPT_PRIVATE, result code).
    pub fn completed(&self) -> Vec<(usize, CURLcode)> {
        let mut done = Vec::new();
        loop {
            let mut left: c_int = 0;
            // SAFETY: `raw` is live; the returned message is valid until the next multi call,
            // and we copy what we need out of it before making one.
            let msg = unsafe { curl_sys::curl_multi_info_read(self.raw, &mut left) };
            if msg.is_null() {
                break;
            }
            // SAFETY: non-null message from curl_multi_info_read, read before any other call.
            let (kind, easy, data) = unsafe { ((*msg).msg, (*msg).easy_handle, (*msg).data) };
            if kind != curl_sys::CURLMSG_DONE {
                continue;
            }
            // `data` is a union { void *whatever; CURLcode result; }: the code is its low bits.
            let result = data as usize as CURLcode;
            let mut token: *mut c_void = std::ptr::null_mut();
            // SAFETY: `easy` is a handle of ours still in the multi; PRIVATE holds our token.
            let rc = unsafe {
                curl_sys::curl_easy_getinfo(
                    easy,
                    curl_sys::CURLINFO_PRIVATE,
                    &mut token as *mut *mut c_void,
                )
            };
            if rc == curl_sys::CURLE_OK {
                done.push((token as usize, result));
            }
        }
        done
    }
}

impl Drop for Multi {
    fn drop(&mut self) {
        if super::forked_since(self.owner_pid) {
            return; // never cleaned up, so curl never calls back into `events` again
        }
        // SAFETY: the engine removed every easy handle before dropping the multi; callbacks
        // that curl makes during cleanup reach `events`, which is dropped after this returns.
        let rc = unsafe { curl_sys::curl_multi_cleanup(self.raw) };
        debug_assert_eq!(
            rc,
            curl_sys::CURLM_OK,
            "curl_multi_cleanup: {}",
            multi_strerror(rc)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Recorder(Rc<RefCell<Vec<Option<i64>>>>);

    impl MultiEvents for Recorder {
        fn socket(&self, _fd: curl_socket_t, _i: SocketInterest) -> Result<(), ()> {
            Ok(())
        }
        fn timer(&self, t: Option<i64>) -> Result<(), ()> {
            self.0.borrow_mut().push(t);
            Ok(())
        }
    }

    #[test]
    fn adding_an_easy_arms_the_timer_and_removal_is_clean() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let multi = Multi::new(Box::new(Recorder(log.clone()))).unwrap();
        let mut easy = Easy::new(crate::ffi::easy::Discard).unwrap();
        easy.set_cstr(curl_sys::CURLOPT_URL, c"http://127.0.0.1:9/")
            .unwrap();
        easy.set_token(7).unwrap();
        multi.add(&easy).unwrap();
        assert_eq!(
            log.borrow().first(),
            Some(&Some(0)),
            "add_handle asks for an immediate timeout"
        );
        multi.remove(&easy).unwrap();
        drop(multi);
        drop(easy);
    }

    #[test]
    fn interest_is_the_whole_wanted_set() {
        assert_eq!(
            SocketInterest::from_what(curl_sys::CURL_POLL_IN),
            SocketInterest {
                read: true,
                write: false
            }
        );
        assert_eq!(
            SocketInterest::from_what(curl_sys::CURL_POLL_OUT),
            SocketInterest {
                read: false,
                write: true
            }
        );
        assert_eq!(
            SocketInterest::from_what(curl_sys::CURL_POLL_REMOVE),
            SocketInterest {
                read: false,
                write: false
            }
        );
    }
}
