//! The asyncio bridge: one libcurl multi handle driven by one event loop.
//!
//! curl's socket callback becomes `loop.add_reader/add_writer/remove_reader/remove_writer`,
//! its timer callback one `call_soon`/`call_later` handle; readiness and timer events come back
//! through `Driver` as `curl_multi_socket_action`, after which finished transfers are drained with
//! `curl_multi_info_read` and only then are their futures resolved. No thread, no polling task:
//! with nothing in flight the loop holds nothing of ours.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_int;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use curl_sys::curl_socket_t;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{intern, PyTraverseError, PyVisit};

use crate::easy::complete;
use crate::error::Error;
use crate::ffi::{
    add_close_listener, is_connection_socket, is_unix_socket, Attached, Multi, MultiEvents,
    SocketCloseListener, SocketInterest, CSELECT_IN, CSELECT_OUT, SOCKET_TIMEOUT,
};
use crate::pool::{recycle, EasyPool};
use crate::sink::{Handle, ResponseSink};

/// Event-loop callables looked up once per wrapper, not per request.
struct LoopHooks {
    event_loop: Py<PyAny>,
    add_reader: Py<PyAny>,
    remove_reader: Py<PyAny>,
    add_writer: Py<PyAny>,
    remove_writer: Py<PyAny>,
    call_soon: Py<PyAny>,
    call_later: Py<PyAny>,
    create_future: Py<PyAny>,
    on_readable: Py<PyAny>,
    on_writable: Py<PyAny>,
    on_timer: Py<PyAny>,
}

/// What the loop holds for one socket: a reader, a writer, and whether the reader is parked
/// (kept for an idle connection curl is not watching).
#[derive(Debug, Clone, Copy, Default)]
struct Registration {
    read: bool,
    write: bool,
    parked: bool,
}

/// What the socket and timer callbacks may touch: our registrations and the loop's.
struct BridgeState {
    hooks: LoopHooks,
    sockets: RefCell<HashMap<curl_socket_t, Registration>>,
    /// The multi's wakeup socket, once seen (see `may_park`).
    wakeup_fd: Cell<Option<curl_socket_t>>,
    timer: RefCell<Option<Py<PyAny>>>,
    /// When the armed timer fires. curl only needs to be called *no later* than it asks, so a
    /// timer that fires sooner is kept: no cancel and re-arm on every request.
    timer_deadline: Cell<Option<Instant>>,
    /// A Python error raised by a loop call inside a curl callback, re-raised after it returns.
    error: RefCell<Option<PyErr>>,
    closed: Cell<bool>,
}

struct Bridge(Rc<BridgeState>);

impl BridgeState {
    fn record<T>(&self, result: PyResult<T>) -> Result<(), ()> {
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                self.error.borrow_mut().get_or_insert(err);
                Err(())
            }
        }
    }

    fn cancel_timer(&self, py: Python<'_>) -> PyResult<()> {
        self.timer_deadline.set(None);
        if let Some(handle) = self.timer.borrow_mut().take() {
            handle.call_method0(py, intern!(py, "cancel"))?;
        }
        Ok(())
    }

    /// Makes the loop's registrations for `fd` match what curl wants. An idle connection's
    /// reader is kept ("parked") when curl stops watching it: the next transfer on the
    /// connection asks for it again, and keeping it saves two loop calls and two epoll_ctl
    /// per request. Only sockets curl closes through our close hook are parked (see
    /// `ffi::sockets`), so a registration never outlives its socket.
    fn set_interest(
        &self,
        py: Python<'_>,
        fd: curl_socket_t,
        want: SocketInterest,
    ) -> PyResult<()> {
        let had = self.sockets.borrow().get(&fd).copied().unwrap_or_default();
        let park = !want.read && !want.write && had.read && self.may_park(fd);
        let read = want.read || park;
        let h = &self.hooks;
        if had.read && !read {
            h.remove_reader.call1(py, (fd,))?;
        }
        if had.write && !want.write {
            h.remove_writer.call1(py, (fd,))?;
        }
        if read && !had.read {
            h.add_reader
                .call1(py, (fd, h.on_readable.clone_ref(py), fd))?;
        }
        if want.write && !had.write {
            h.add_writer
                .call1(py, (fd, h.on_writable.clone_ref(py), fd))?;
        }
        let mut sockets = self.sockets.borrow_mut();
        if read || want.write {
            sockets.insert(
                fd,
                Registration {
                    read,
                    write: want.write,
                    parked: park,
                },
            );
        } else {
            sockets.remove(&fd);
        }
        Ok(())
    }

    /// Whether `fd` may keep its reader while curl does not watch it: a connection socket
    /// (closed only through our close hook), or the multi's wakeup socket (closed only by
    /// `curl_multi_cleanup`, after `unregister_all`).
    fn may_park(&self, fd: curl_socket_t) -> bool {
        if is_connection_socket(fd) || self.wakeup_fd.get() == Some(fd) {
            return true;
        }
        if self.wakeup_fd.get().is_none() && is_unix_socket(fd) {
            self.wakeup_fd.set(Some(fd));
            return true;
        }
        false
    }

    /// Removes every registration of `fd` from the loop.
    fn forget(&self, py: Python<'_>, fd: curl_socket_t) -> PyResult<()> {
        let Some(had) = self.sockets.borrow_mut().remove(&fd) else {
            return Ok(());
        };
        if had.read {
            self.hooks.remove_reader.call1(py, (fd,))?;
        }
        if had.write {
            self.hooks.remove_writer.call1(py, (fd,))?;
        }
        Ok(())
    }

    /// A parked socket became readable: the idle connection got data or was closed by its
    /// peer. curl is not watching it (it checks a pooled connection when it next uses it), so
    /// the reader goes, or it would fire on every loop iteration. Returns whether it was parked.
    fn unpark_if_parked(&self, py: Python<'_>, fd: curl_socket_t) -> PyResult<bool> {
        let parked = self.sockets.borrow().get(&fd).is_some_and(|r| r.parked);
        if parked {
            self.forget(py, fd)?;
        }
        Ok(parked)
    }

    /// Drops every registration of ours from the loop (close, or the loop went away).
    fn unregister_all(&self, py: Python<'_>) {
        let fds: Vec<curl_socket_t> = self.sockets.borrow().keys().copied().collect();
        for fd in fds {
            // Best effort: a closed loop has already forgotten its readers.
            let _ = self.forget(py, fd);
        }
        self.sockets.borrow_mut().clear();
        let _ = self.cancel_timer(py);
    }
}

impl SocketCloseListener for BridgeState {
    fn closing(&self, fd: curl_socket_t) {
        if self.sockets.borrow().contains_key(&fd) {
            Python::attach(|py| {
                let result = self.forget(py, fd);
                let _ = self.record(result);
            });
        }
    }
}

impl MultiEvents for Bridge {
    fn socket(&self, fd: curl_socket_t, interest: SocketInterest) -> Result<(), ()> {
        if self.0.closed.get() {
            return Ok(());
        }
        Python::attach(|py| self.0.record(self.0.set_interest(py, fd, interest)))
    }

    fn timer(&self, timeout_ms: Option<i64>) -> Result<(), ()> {
        if self.0.closed.get() {
            return Ok(());
        }
        let state = &self.0;
        let deadline = timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms as u64));
        if let (Some(wanted), Some(armed)) = (deadline, state.timer_deadline.get()) {
            if armed <= wanted && state.timer.borrow().is_some() {
                return Ok(()); // the armed timer fires first; curl re-arms when it runs
            }
        }
        Python::attach(|py| {
            state.record(state.cancel_timer(py))?;
            let h = &state.hooks;
            let handle = match timeout_ms {
                None => return Ok(()),
                Some(0) => h.call_soon.call1(py, (h.on_timer.clone_ref(py),)),
                Some(ms) => h
                    .call_later
                    .call1(py, (ms as f64 / 1000.0, h.on_timer.clone_ref(py))),
            };
            match handle {
                Ok(handle) => {
                    *state.timer.borrow_mut() = Some(handle);
                    state.timer_deadline.set(deadline);
                    Ok(())
                }
                Err(err) => state.record::<()>(Err(err)),
            }
        })
    }
}

/// One transfer in flight: its handle (in the multi until this is dropped or detached), the
/// future its caller awaits, and where the handle goes when it is done.
struct Transfer {
    easy: Attached<ResponseSink>,
    future: Py<PyAny>,
    pool: Weak<RefCell<EasyPool>>,
    session_id: u64,
}

pub struct Engine {
    multi: RefCell<Option<Multi>>,
    bridge: Rc<BridgeState>,
    transfers: RefCell<HashMap<usize, Transfer>>,
    next_token: Cell<usize>,
    next_session: Cell<u64>,
    owner_pid: u32,
}

/// Resource limits of the multi handle (its own pool; per-session pools follow curl's rules).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connects: i64,
    pub max_host_connections: i64,
    pub max_total_connections: i64,
}

impl Engine {
    fn new(py: Python<'_>, event_loop: Bound<'_, PyAny>, limits: Limits) -> PyResult<Rc<Engine>> {
        let driver = Bound::new(
            py,
            Driver {
                engine: Weak::new(),
            },
        )?;
        let get = |name: &str| -> PyResult<Py<PyAny>> { Ok(event_loop.getattr(name)?.unbind()) };
        let hooks = LoopHooks {
            add_reader: get("add_reader")?,
            remove_reader: get("remove_reader")?,
            add_writer: get("add_writer")?,
            remove_writer: get("remove_writer")?,
            call_soon: get("call_soon")?,
            call_later: get("call_later")?,
            create_future: get("create_future")?,
            on_readable: driver.getattr("on_readable")?.unbind(),
            on_writable: driver.getattr("on_writable")?.unbind(),
            on_timer: driver.getattr("on_timer")?.unbind(),
            event_loop: event_loop.clone().unbind(),
        };
        let bridge = Rc::new(BridgeState {
            hooks,
            sockets: RefCell::new(HashMap::new()),
            wakeup_fd: Cell::new(None),
            timer: RefCell::new(None),
            timer_deadline: Cell::new(None),
            error: RefCell::new(None),
            closed: Cell::new(false),
        });
        let listener: Rc<dyn SocketCloseListener> = bridge.clone();
        add_close_listener(Rc::downgrade(&listener));
        let multi = Multi::new(Box::new(Bridge(bridge.clone()))).map_err(Error::Internal)?;
        for (opt, value) in [
            (curl_sys::CURLMOPT_MAXCONNECTS, limits.max_connects),
            (
                curl_sys::CURLMOPT_MAX_HOST_CONNECTIONS,
                limits.max_host_connections,
            ),
            (
                curl_sys::CURLMOPT_MAX_TOTAL_CONNECTIONS,
                limits.max_total_connections,
            ),
        ] {
            multi
                .set_long(opt, value as std::ffi::c_long)
                .map_err(|c| {
                    Error::Value(format!(
                        "invalid connection limit: {}",
                        crate::ffi::multi_strerror(c)
                    ))
                })?;
        }
        let engine = Rc::new(Engine {
            multi: RefCell::new(Some(multi)),
            bridge,
            transfers: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            next_session: Cell::new(1),
            owner_pid: crate::ffi::process_id(),
        });
        driver.borrow_mut().engine = Rc::downgrade(&engine);
        Ok(engine)
    }

    pub fn is_closed(&self) -> bool {
        self.bridge.closed.get()
    }

    pub fn event_loop<'py>(&self, py: Python<'py>) -> &Bound<'py, PyAny> {
        self.bridge.hooks.event_loop.bind(py)
    }

    pub fn new_session_id(&self) -> u64 {
        let id = self.next_session.get();
        self.next_session.set(id + 1);
        id
    }

    /// Refuses use from a forked child: libcurl handles and the parent's loop do not survive fork.
    pub fn check_usable(&self) -> Result<(), Error> {
        if self.in_forked_child() {
            return Err(Error::Closed(
                "acurl_rs objects cannot be used in a forked child; make a new CurlWrapper there",
            ));
        }
        if self.is_closed() {
            return Err(Error::Closed("the CurlWrapper is closed"));
        }
        Ok(())
    }

    fn take_error(&self) -> Option<PyErr> {
        self.bridge.error.borrow_mut().take()
    }

    /// Adds a prepared transfer to the multi; returns (future, token).
    pub fn start(
        &self,
        py: Python<'_>,
        mut easy: Handle,
        pool: &Rc<RefCell<EasyPool>>,
        session_id: u64,
    ) -> PyResult<(Py<PyAny>, usize)> {
        self.check_usable()?;
        let token = self.next_token.get();
        self.next_token.set(token.wrapping_add(1).max(1));
        easy.set_token(token).map_err(Error::from_code)?;
        let future = self.bridge.hooks.create_future.call0(py)?;
        let (added, panic) = {
            let multi = self.multi.borrow();
            let multi = multi
                .as_ref()
                .ok_or(Error::Closed("the CurlWrapper is closed"))?;
            (multi.attach(easy), multi.take_panic())
        };
        // A loop call that failed (or a panic) while curl asked for its first timeout: the
        // transfer is not started (dropping `added` takes the easy out of the multi again).
        if let Some(err) = self.take_error() {
            return Err(err);
        }
        if let Some(panic) = panic {
            return Err(Error::from_panic(panic).into());
        }
        let easy = match added {
            Ok(attached) => attached,
            Err((_, code)) => {
                return Err(Error::Internal(format!(
                    "curl_multi_add_handle: {}",
                    crate::ffi::multi_strerror(code)
                ))
                .into())
            }
        };
        self.transfers.borrow_mut().insert(
            token,
            Transfer {
                easy,
                future: future.clone_ref(py),
                pool: Rc::downgrade(pool),
                session_id,
            },
        );
        Ok((future, token))
    }

    /// Readiness or timer event from the loop: let curl work, then resolve what finished.
    fn socket_action(&self, py: Python<'_>, fd: curl_socket_t, events: c_int) -> PyResult<()> {
        let (result, panic) = {
            let multi = self.multi.borrow();
            match multi.as_ref() {
                Some(multi) => (multi.socket_action(fd, events), multi.take_panic()),
                None => return Ok(()),
            }
        };
        self.drain(py);
        if let Some(err) = self.take_error() {
            return Err(err);
        }
        if let Some(panic) = panic {
            return Err(Error::from_panic(panic).into());
        }
        if let Err(code) = result {
            return Err(Error::Internal(format!(
                "curl_multi_socket_action: {}",
                crate::ffi::multi_strerror(code)
            ))
            .into());
        }
        Ok(())
    }

    fn drain(&self, py: Python<'_>) {
        let done = match self.multi.borrow().as_ref() {
            Some(multi) => multi.completed(),
            None => return,
        };
        for (token, code) in done {
            let Some(transfer) = self.transfers.borrow_mut().remove(&token) else {
                continue;
            };
            if code == crate::error::OPERATION_TIMEDOUT {
                self.retire_stalled_connection(transfer.easy.easy());
            }
            self.finish(py, transfer, code);
        }
    }

    /// An HTTP/2 stream that timed out leaves its connection in the pool, where curl would give
    /// it to the next transfer even when the peer stopped reading it: the connection is ended
    /// unless another transfer still runs on it (one that progresses, or will time out too).
    /// (curl itself closes an HTTP/1.1 connection whose transfer did not finish: then there is
    /// no socket left to end.)
    fn retire_stalled_connection(&self, easy: &Handle) {
        let Ok(conn_id) = easy.connection_id() else {
            return;
        };
        if conn_id < 0 {
            return;
        }
        let in_use = self
            .transfers
            .borrow()
            .values()
            .any(|other| other.easy.easy().connection_id() == Ok(conn_id));
        if !in_use {
            easy.shut_down_connection();
        }
    }

    fn finish(&self, py: Python<'_>, transfer: Transfer, code: crate::ffi::CURLcode) {
        let Transfer {
            easy, future, pool, ..
        } = transfer;
        let mut easy = easy.detach();
        let future = future.bind(py);
        let response_started = easy.sink().response_started();
        let delivered = match complete(py, &mut easy, code) {
            Ok(response) => future.call_method1(intern!(py, "set_result"), (response,)),
            Err(err) => {
                let exc = err.into_pyerr(py).into_value(py);
                let _ = exc
                    .bind(py)
                    .setattr(intern!(py, "response_started"), response_started);
                future.call_method1(intern!(py, "set_exception"), (exc,))
            }
        };
        // A future cancelled in the same loop iteration refuses its result (InvalidStateError):
        // nobody waits for it any more, so there is nothing to report. Checking `done()` first
        // would cost a call on every request to save one on a rare race.
        drop(delivered);
        recycle(easy, &pool);
    }

    /// True in a process forked from the one that made this engine: it must not touch the
    /// parent's connections or its event loop's epoll set (shared across fork).
    fn in_forked_child(&self) -> bool {
        crate::ffi::forked_since(self.owner_pid)
    }

    pub fn cancel(&self, token: usize) {
        if self.in_forked_child() {
            return;
        }
        let Some(transfer) = self.transfers.borrow_mut().remove(&token) else {
            return;
        };
        let easy = transfer.easy.detach();
        if let Some(err) = self.take_error() {
            drop(err); // a loop call failed while curl released the socket: nothing to report to
        }
        recycle(easy, &transfer.pool);
    }

    /// Fails every transfer of `session_id` (or all with None) with `reason`.
    pub fn abort(&self, py: Python<'_>, session_id: Option<u64>, reason: &'static str) {
        if self.in_forked_child() {
            return;
        }
        let tokens: Vec<usize> = self
            .transfers
            .borrow()
            .iter()
            .filter(|(_, t)| session_id.is_none_or(|id| t.session_id == id))
            .map(|(k, _)| *k)
            .collect();
        for token in tokens {
            let Some(transfer) = self.transfers.borrow_mut().remove(&token) else {
                continue;
            };
            let _easy = transfer.easy.detach(); // freed after its future is failed
            let future = transfer.future.bind(py);
            if !future
                .call_method0(intern!(py, "done"))
                .and_then(|d| d.is_truthy())
                .unwrap_or(true)
            {
                let exc = Error::Closed(reason).into_pyerr(py).into_value(py);
                let _ = future.call_method1(intern!(py, "set_exception"), (exc,));
            }
        }
        let _ = self.take_error();
    }

    pub fn in_flight(&self) -> usize {
        self.transfers.borrow().len()
    }

    pub fn close(&self, py: Python<'_>) {
        if self.is_closed() {
            return;
        }
        if self.in_forked_child() {
            self.bridge.closed.set(true);
            return;
        }
        self.abort(
            py,
            None,
            "the CurlWrapper was closed with the request in flight",
        );
        self.bridge.unregister_all(py);
        self.bridge.closed.set(true);
        // curl_multi_cleanup closes the multi's own connections now, not at garbage collection.
        let multi = self.multi.borrow_mut().take();
        drop(multi);
        let _ = self.take_error();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.in_forked_child() {
            // The handles' own drops leak in a forked child; the loop's epoll set is shared
            // with the parent, so no registration of ours is removed from it either.
            self.bridge.closed.set(true);
            return;
        }
        // Every easy leaves the multi as its transfer goes (and curl_multi_cleanup waits for the
        // last one: each holds the multi handle); then the loop's registrations go.
        self.transfers.get_mut().clear();
        if !self.bridge.closed.get() {
            Python::attach(|py| self.bridge.unregister_all(py));
            self.bridge.closed.set(true);
        }
        self.multi.get_mut().take();
    }
}

/// The callable the loop holds for our fds and timer; it only knows the engine weakly, so the
/// loop never keeps a closed wrapper alive.
#[pyclass(unsendable, module = "acurl_rs._acurl_rs")]
pub struct Driver {
    engine: Weak<Engine>,
}

#[pymethods]
impl Driver {
    fn on_readable(&self, py: Python<'_>, fd: curl_socket_t) -> PyResult<()> {
        match self.engine.upgrade() {
            Some(engine) => {
                if engine.bridge.unpark_if_parked(py, fd)? {
                    return Ok(());
                }
                engine.socket_action(py, fd, CSELECT_IN)
            }
            None => Ok(()),
        }
    }

    fn on_writable(&self, py: Python<'_>, fd: curl_socket_t) -> PyResult<()> {
        match self.engine.upgrade() {
            Some(engine) => engine.socket_action(py, fd, CSELECT_OUT),
            None => Ok(()),
        }
    }

    fn on_timer(&self, py: Python<'_>) -> PyResult<()> {
        match self.engine.upgrade() {
            Some(engine) => {
                engine.bridge.timer.borrow_mut().take();
                engine.bridge.timer_deadline.set(None);
                engine.socket_action(py, SOCKET_TIMEOUT, 0)
            }
            None => Ok(()),
        }
    }
}

/// The native side of `CurlWrapper`: owns the engine for one event loop.
#[pyclass(unsendable, weakref, module = "acurl_rs._acurl_rs")]
pub struct NativeWrapper {
    engine: Rc<Engine>,
}

impl NativeWrapper {
    pub fn engine(&self) -> &Rc<Engine> {
        &self.engine
    }
}

#[pymethods]
impl NativeWrapper {
    #[new]
    #[pyo3(signature = (event_loop, max_connects=100, max_host_connections=0, max_total_connections=0))]
    fn new(
        py: Python<'_>,
        event_loop: Bound<'_, PyAny>,
        max_connects: i64,
        max_host_connections: i64,
        max_total_connections: i64,
    ) -> PyResult<NativeWrapper> {
        for (name, v) in [
            ("max_connects", max_connects),
            ("max_host_connections", max_host_connections),
            ("max_total_connections", max_total_connections),
        ] {
            if v < 0 {
                return Err(Error::Value(format!("{name} must be >= 0, got {v}")).into());
            }
        }
        let limits = Limits {
            max_connects,
            max_host_connections,
            max_total_connections,
        };
        Ok(NativeWrapper {
            engine: Engine::new(py, event_loop, limits)?,
        })
    }

    fn close(&self, py: Python<'_>) {
        self.engine.close(py);
    }

    #[getter]
    fn closed(&self) -> bool {
        self.engine.is_closed()
    }

    #[getter]
    fn event_loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.engine.event_loop(py).clone().unbind()
    }

    /// Transfers in flight (diagnostics and leak tests).
    #[getter]
    fn in_flight(&self) -> usize {
        self.engine.in_flight()
    }

    /// (fds watched for reading or writing for curl, whether a timer is armed): empty when
    /// idle. Parked readers are not counted (see `parked`).
    fn registrations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let fds: Vec<curl_socket_t> = self
            .engine
            .bridge
            .sockets
            .borrow()
            .iter()
            .filter(|(_, r)| !r.parked)
            .map(|(fd, _)| *fd)
            .collect();
        let timer = self.engine.bridge.timer.borrow().is_some();
        PyTuple::new(
            py,
            [
                fds.into_pyobject(py)?.into_any(),
                timer.into_pyobject(py)?.to_owned().into_any(),
            ],
        )
    }

    /// Fds whose reader is parked: idle pooled connections and the multi's wakeup socket,
    /// which curl is not watching (diagnostics and tests).
    fn parked(&self) -> Vec<curl_socket_t> {
        self.engine
            .bridge
            .sockets
            .borrow()
            .iter()
            .filter(|(_, r)| r.parked)
            .map(|(fd, _)| *fd)
            .collect()
    }

    fn __traverse__(&self, _visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // The engine's Python references (loop methods, futures) are reached through an `Rc`
        // that sessions share too; reporting them here would make the collector count them
        // twice. They form no cycle with this object: the loop reaches us only weakly.
        Ok(())
    }
}
