//! RAII wrapper of a libcurl multi handle, driven by the socket interface
//! (`curl_multi_socket_action`) with its socket and timer callbacks, and [`Attached`]: an easy
//! handle in the multi, as a value whose drop takes it out again.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_int, c_long, c_void};
use std::marker::PhantomData;
use std::rc::Rc;

use curl_sys::{curl_socket_t, CURLMcode, CURLMoption, CURLcode, CURL, CURLM};

use super::easy::{Easy, Sink};
use super::{catch_panic, PanicPayload};

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

/// What the socket and timer callbacks' user data points at.
struct Registered {
    events: Box<dyn MultiEvents>,
    /// A panic caught in a callback, raised by the engine after the multi call returns.
    panic: RefCell<Option<PanicPayload>>,
}

impl Registered {
    /// Runs one bridge call for a trampoline: 0, or -1 (curl aborts the multi call) when the
    /// bridge fails or panics; the first panic's payload is kept.
    fn run(&self, call: impl FnOnce(&dyn MultiEvents) -> Result<(), ()>) -> c_int {
        match catch_panic(|| call(&*self.events)) {
            Ok(Ok(())) => 0,
            Ok(Err(())) => -1,
            Err(payload) => {
                if let Ok(mut kept) = self.panic.try_borrow_mut() {
                    kept.get_or_insert(payload);
                }
                -1
            }
        }
    }
}

/// The multi handle itself, shared by the [`Multi`] and every [`Attached`] easy: curl cleans
/// it up when the last of them goes, so no easy is still in it by then.
struct MultiHandle {
    raw: *mut CURLM,
    // Boxed so curl gets a stable pointer to it.
    registered: Box<Registered>,
    owner_pid: u32,
}

pub struct Multi {
    handle: Rc<MultiHandle>,
    _not_send: PhantomData<Rc<()>>,
}

/// An easy handle in a multi. Dropping it (or `detach`) removes the easy from the multi; it
/// holds the multi handle alive meanwhile, so teardown order is ownership, not call order.
pub struct Attached<S: Sink> {
    easy: Option<Easy<S>>,
    multi: Rc<MultiHandle>,
}

extern "C" fn socket_callback(
    _easy: *mut CURL,
    fd: curl_socket_t,
    what: c_int,
    userp: *mut c_void,
    _socketp: *mut c_void,
) -> c_int {
    // SAFETY: userp is the `Box<Registered>` set as SOCKETDATA by `Multi::new`, owned by the
    // multi handle and alive until after curl_multi_cleanup returns; only shared references
    // to it are made.
    let registered = unsafe { &*(userp as *const Registered) };
    registered.run(|events| events.socket(fd, SocketInterest::from_what(what)))
}

extern "C" fn timer_callback(_multi: *mut CURLM, timeout_ms: c_long, userp: *mut c_void) -> c_int {
    // SAFETY: as in `socket_callback`: TIMERDATA is the same live Box.
    let registered = unsafe { &*(userp as *const Registered) };
    let timeout = if timeout_ms < 0 {
        None
    } else {
        #[allow(clippy::useless_conversion)] // c_long is i32 on some targets
        Some(i64::from(timeout_ms))
    };
    registered.run(|events| events.timer(timeout))
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
        let handle = MultiHandle {
            raw,
            registered: Box::new(Registered {
                events,
                panic: RefCell::new(None),
            }),
            owner_pid: super::process_id(),
        };
        let userp = &*handle.registered as *const Registered as *mut c_void;
        let scb: curl_sys::curl_socket_callback = socket_callback;
        let tcb: curl_sys::curl_multi_timer_callback = timer_callback;
        for (opt, ptr) in [
            (curl_sys::CURLMOPT_SOCKETFUNCTION, scb as *mut c_void),
            (curl_sys::CURLMOPT_SOCKETDATA, userp),
            (curl_sys::CURLMOPT_TIMERFUNCTION, tcb as *mut c_void),
            (curl_sys::CURLMOPT_TIMERDATA, userp),
        ] {
            // SAFETY: `raw` is live; the callbacks have curl's documented signatures and never
            // unwind; `userp` points into a Box owned by `handle`, which outlives the multi.
            check(unsafe { curl_sys::curl_multi_setopt(raw, opt, ptr) }).map_err(multi_strerror)?;
        }
        Ok(Multi {
            handle: Rc::new(handle),
            _not_send: PhantomData,
        })
    }

    pub fn set_long(&self, opt: CURLMoption, value: c_long) -> Result<(), CURLMcode> {
        // SAFETY: `raw` is live; callers pass only options whose argument is a long.
        check(unsafe { curl_sys::curl_multi_setopt(self.handle.raw, opt, value) })
    }

    /// Starts driving `easy`: it stays in the multi until the returned value is dropped or
    /// detached. On failure the easy comes back, not in the multi.
    pub fn attach<S: Sink>(&self, easy: Easy<S>) -> Result<Attached<S>, (Easy<S>, CURLMcode)> {
        // SAFETY: both handles are live; `Attached` owns the easy (so it is not freed or moved
        // while curl drives it) and removes it before it can be dropped.
        let rc = unsafe { curl_sys::curl_multi_add_handle(self.handle.raw, easy.as_ptr()) };
        match check(rc) {
            Ok(()) => Ok(Attached {
                easy: Some(easy),
                multi: self.handle.clone(),
            }),
            Err(code) => Err((easy, code)),
        }
    }

    /// Tells curl that `fd` is ready (`ev_bitmask` of CSELECT_*), or that the timer fired
    /// (`fd == SOCKET_TIMEOUT`).
    pub fn socket_action(&self, fd: curl_socket_t, ev_bitmask: c_int) -> Result<(), CURLMcode> {
        let mut running: c_int = 0;
        // SAFETY: `raw` is live; this is never called from inside one of its own callbacks
        // (the bridge schedules work on the event loop instead).
        check(unsafe {
            curl_sys::curl_multi_socket_action(self.handle.raw, fd, ev_bitmask, &mut running)
        })
    }

    /// The panic a socket or timer callback raised since the last call, if one did (or one of
    /// the thread's ownerless hooks, which curl runs inside multi calls too).
    pub fn take_panic(&self) -> Option<PanicPayload> {
        let own = self.handle.registered.panic.try_borrow_mut().ok()?.take();
        own.or_else(super::take_stray_panic)
    }

    /// Finished transfers as (token from CURLOPT_PRIVATE, result code).
    pub fn completed(&self) -> Vec<(usize, CURLcode)> {
        let raw = self.handle.raw;
        let mut done = Vec::new();
        loop {
            let mut left: c_int = 0;
            // SAFETY: `raw` is live; the returned message is valid until the next multi call,
            // and we copy what we need out of it before making one.
            let msg = unsafe { curl_sys::curl_multi_info_read(raw, &mut left) };
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

impl MultiHandle {
    fn remove<S: Sink>(&self, easy: &Easy<S>) {
        if super::forked_since(self.owner_pid) {
            // Removal would make curl release the parent's sockets (and the bridge edit the
            // parent's epoll set); a forked child leaks its copies instead.
            return;
        }
        // SAFETY: both handles are live and the easy was added by `Multi::attach`; callbacks
        // curl makes during the removal reach `registered`, alive as long as `self`.
        let rc = unsafe { curl_sys::curl_multi_remove_handle(self.raw, easy.as_ptr()) };
        debug_assert_eq!(
            rc,
            curl_sys::CURLM_OK,
            "curl_multi_remove_handle: {}",
            multi_strerror(rc)
        );
    }
}

impl<S: Sink> Attached<S> {
    pub fn easy(&self) -> &Easy<S> {
        self.easy
            .as_ref()
            .expect("attached until detached or dropped")
    }

    /// Takes the easy out of the multi and hands it back.
    pub fn detach(mut self) -> Easy<S> {
        let easy = self
            .easy
            .take()
            .expect("attached until detached or dropped");
        self.multi.remove(&easy);
        easy
    }
}

impl<S: Sink> Drop for Attached<S> {
    fn drop(&mut self) {
        if let Some(easy) = self.easy.take() {
            self.multi.remove(&easy);
        }
    }
}

impl Drop for MultiHandle {
    fn drop(&mut self) {
        if super::forked_since(self.owner_pid) {
            return; // never cleaned up, so curl never calls back into `registered` again
        }
        // SAFETY: every `Attached` holds an Rc of this handle, so none is left: no easy is in
        // the multi. Callbacks curl makes during cleanup reach `registered`, which is dropped
        // after this returns.
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
    use crate::ffi::easy::Running;
    use std::collections::BTreeMap;
    use std::ffi::CString;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    /// What curl asked of the "event loop", in order, and what it wants now.
    #[derive(Default)]
    struct Log {
        sockets: Vec<(curl_socket_t, SocketInterest)>,
        timers: Vec<Option<i64>>,
        wanted: BTreeMap<curl_socket_t, SocketInterest>,
        deadline: Option<Instant>,
    }

    struct Recorder {
        log: Rc<RefCell<Log>>,
        panic_in_timer: bool,
    }

    impl MultiEvents for Recorder {
        fn socket(&self, fd: curl_socket_t, interest: SocketInterest) -> Result<(), ()> {
            let mut log = self.log.borrow_mut();
            log.sockets.push((fd, interest));
            if interest.read || interest.write {
                log.wanted.insert(fd, interest);
            } else {
                log.wanted.remove(&fd);
            }
            Ok(())
        }
        fn timer(&self, t: Option<i64>) -> Result<(), ()> {
            assert!(!self.panic_in_timer, "timer boom");
            let mut log = self.log.borrow_mut();
            log.timers.push(t);
            log.deadline = t.map(|ms| Instant::now() + Duration::from_millis(ms as u64));
            Ok(())
        }
    }

    fn recorder(panic_in_timer: bool) -> (Multi, Rc<RefCell<Log>>) {
        let log = Rc::new(RefCell::new(Log::default()));
        let events = Recorder {
            log: log.clone(),
            panic_in_timer,
        };
        (Multi::new(Box::new(events)).unwrap(), log)
    }

    /// Keeps the header lines and body; panics at a header named "X-Boom" when asked to.
    #[derive(Default)]
    struct Collect {
        lines: Vec<Vec<u8>>,
        body: Vec<u8>,
        boom: bool,
    }

    impl Sink for Collect {
        fn header(&mut self, line: &[u8], _: &Running<'_>) -> bool {
            assert!(!(self.boom && line.starts_with(b"X-Boom")), "sink boom");
            self.lines.push(line.to_vec());
            true
        }
        fn body(&mut self, chunk: &[u8]) -> bool {
            self.body.extend_from_slice(chunk);
            true
        }
        fn reset(&mut self) {
            *self = Collect::default();
        }
    }

    /// A one-shot HTTP/1.1 server on loopback: reads one request, answers, closes.
    fn serve_once() -> (std::thread::JoinHandle<()>, CString) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = CString::new(format!("http://{}/x", listener.local_addr().unwrap())).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "client went away mid-request");
                request.extend_from_slice(&buf[..n]);
            }
            let reply = "HTTP/1.1 200 OK\r\nX-Boom: 1\r\nContent-Length: 5\r\n\
                         Connection: close\r\n\r\nhello";
            conn.write_all(reply.as_bytes()).unwrap();
        });
        (server, url)
    }

    /// Drives the multi as the bridge does, with poll(2) for the event loop, until a transfer
    /// completes.
    fn run_to_completion(multi: &Multi, log: &Rc<RefCell<Log>>) -> Vec<(usize, CURLcode)> {
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let done = multi.completed();
            if !done.is_empty() {
                return done;
            }
            assert!(Instant::now() < give_up, "the transfer did not finish");
            let (mut fds, deadline) = {
                let log = log.borrow();
                let fds: Vec<libc::pollfd> = log
                    .wanted
                    .iter()
                    .map(|(&fd, i)| libc::pollfd {
                        fd,
                        events: (if i.read { libc::POLLIN } else { 0 })
                            | (if i.write { libc::POLLOUT } else { 0 }),
                        revents: 0,
                    })
                    .collect();
                (fds, log.deadline)
            };
            let wait = deadline.map_or(Duration::from_millis(100), |d| {
                d.saturating_duration_since(Instant::now())
            });
            // SAFETY: `fds` is a live, correctly sized array of pollfd for the whole call.
            let ready = unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    wait.as_millis().min(100) as c_int,
                )
            };
            assert!(ready >= 0, "poll failed");
            for p in fds.iter().filter(|p| p.revents != 0) {
                let mut bits = 0;
                if p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    bits |= CSELECT_IN;
                }
                if p.revents & libc::POLLOUT != 0 {
                    bits |= CSELECT_OUT;
                }
                multi.socket_action(p.fd, bits).unwrap();
            }
            let due = log.borrow().deadline.is_some_and(|d| d <= Instant::now());
            if due {
                log.borrow_mut().deadline = None;
                multi.socket_action(SOCKET_TIMEOUT, 0).unwrap();
            }
        }
    }

    fn transfer(boom: bool) -> (Easy<Collect>, CURLcode, Rc<RefCell<Log>>) {
        let (server, url) = serve_once();
        let (multi, log) = recorder(false);
        let mut easy = Easy::new(Collect {
            boom,
            ..Collect::default()
        })
        .unwrap();
        easy.set_cstr(curl_sys::CURLOPT_URL, &url).unwrap();
        easy.set_token(7).unwrap();
        let attached = multi.attach(easy).map_err(|(_, c)| c).unwrap();
        assert_eq!(
            log.borrow().timers.first(),
            Some(&Some(0)),
            "add_handle asks for an immediate timeout"
        );
        let done = run_to_completion(&multi, &log);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0, 7, "the token finds the transfer");
        let easy = attached.detach();
        drop(multi);
        server.join().unwrap();
        (easy, done[0].1, log)
    }

    #[test]
    fn a_transfer_over_loopback_and_its_socket_interest() {
        let (easy, code, log) = transfer(false);
        assert_eq!(code, curl_sys::CURLE_OK);
        assert_eq!(easy.sink().body, b"hello");
        assert!(easy.sink().lines[0].starts_with(b"HTTP/1.1 200"));
        assert_eq!(easy.sink().lines.last().unwrap(), b"\r\n");
        let log = log.borrow();
        let fd = log.sockets[0].0;
        let interest: Vec<SocketInterest> = log
            .sockets
            .iter()
            .filter(|(f, _)| *f == fd)
            .map(|(_, i)| *i)
            .collect();
        // The request goes out, the response comes in, and the closed connection is dropped:
        // `what` is always the whole wanted set, ending with none at all.
        assert!(interest.iter().any(|i| i.read && !i.write), "{interest:?}");
        assert_eq!(
            interest.last(),
            Some(&SocketInterest {
                read: false,
                write: false
            }),
            "{interest:?}"
        );
        assert!(
            log.wanted.is_empty(),
            "nothing left registered: {:?}",
            log.wanted
        );
    }

    #[test]
    fn a_panic_in_a_sink_fails_its_transfer_and_is_kept() {
        let (mut easy, code, _) = transfer(true);
        assert_eq!(code, curl_sys::CURLE_WRITE_ERROR);
        let payload = easy
            .take_panic()
            .expect("the panic is kept for the transfer");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"sink boom"));
        assert!(easy.take_panic().is_none());
        assert!(
            easy.sink().body.is_empty(),
            "nothing reaches the sink after its panic"
        );
    }

    /// A handle for a transfer that these tests never let run.
    fn unstarted_easy() -> Easy<crate::ffi::easy::Discard> {
        let mut easy = Easy::new(crate::ffi::easy::Discard).unwrap();
        easy.set_cstr(curl_sys::CURLOPT_URL, c"http://127.0.0.1:9/")
            .unwrap();
        easy
    }

    #[test]
    fn a_panic_in_a_multi_callback_is_kept_for_the_engine() {
        let (multi, _log) = recorder(true);
        let easy = unstarted_easy();
        let attached = multi.attach(easy); // add_handle sets the timer, which panics
        let payload = multi.take_panic().expect("kept");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"timer boom"));
        assert!(multi.take_panic().is_none());
        drop(attached);
    }

    #[test]
    fn a_panic_in_an_ownerless_hook_is_raised_by_the_next_multi_call() {
        let (multi, _log) = recorder(false);
        assert_eq!(super::super::no_unwind(|| panic!("hook boom")), None::<()>);
        let payload = multi.take_panic().expect("kept for the thread's multi");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"hook boom"));
        assert!(multi.take_panic().is_none());
    }

    #[test]
    fn the_multi_outlives_its_attached_easies() {
        let (multi, log) = recorder(false);
        let easy = unstarted_easy();
        let attached = multi.attach(easy).map_err(|(_, c)| c).unwrap();
        drop(multi); // no cleanup yet: the attached easy still holds the handle
        assert_eq!(Rc::strong_count(&attached.multi), 1);
        drop(attached); // removal, then curl_multi_cleanup
        assert!(log.borrow().wanted.is_empty());
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
