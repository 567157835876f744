//! The native side of `Session`: a share handle, its pool of idle easy handles, and the door to
//! the wrapper's engine. Python-facing argument handling lives here; the transfer itself in
//! `easy.rs`.

use std::cell::RefCell;
use std::rc::Rc;

use pyo3::prelude::*;

use crate::easy::{prepare, RequestSpec};
use crate::error::Error;
use crate::ffi::ShareScope;
use crate::multi::{Engine, NativeWrapper};
use crate::options::TransferOptions;
use crate::pool::EasyPool;
use crate::share::SessionShare;

/// Everything that dies when a session closes: the share (and with it, in "session" scope, its
/// connections) and the idle handles that point at it.
struct Open {
    share: SessionShare,
    pool: Rc<RefCell<EasyPool>>,
}

#[pyclass(unsendable, weakref, module = "acurl_rs._acurl_rs")]
pub struct NativeSession {
    engine: Rc<Engine>,
    open: Option<Open>,
    id: u64,
    scope: ShareScope,
    tls: TlsSessions,
    lock_callbacks: bool,
}

/// Where a session's new TLS connections find sessions to resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsSessions {
    /// The wrapper's cache (curl's multi-level cache), shared by every session of the wrapper:
    /// a new virtual user's first connection resumes instead of a full handshake.
    Wrapper,
    /// The session's own cache, in its share: each virtual user starts with a full handshake.
    Session,
    /// No session cache: every connection is a full handshake.
    Off,
}

impl TlsSessions {
    fn parse(s: &str) -> Result<TlsSessions, Error> {
        match s {
            "wrapper" => Ok(TlsSessions::Wrapper),
            "session" => Ok(TlsSessions::Session),
            "off" => Ok(TlsSessions::Off),
            other => Err(Error::Value(format!(
                "Invalid tls_sessions: {other} (expected \"wrapper\", \"session\" or \"off\")"
            ))),
        }
    }
}

impl Open {
    fn new(scope: ShareScope, tls: TlsSessions, lock_callbacks: bool) -> Result<Open, Error> {
        let share = SessionShare::new(scope, tls == TlsSessions::Session, lock_callbacks)?;
        let pool = Rc::new(RefCell::new(EasyPool::new(share.handle())));
        Ok(Open { share, pool })
    }
}

impl NativeSession {
    fn open(&self) -> Result<&Open, Error> {
        self.open
            .as_ref()
            .ok_or(Error::Closed("the session is closed"))
    }
}

#[pymethods]
impl NativeSession {
    #[new]
    #[pyo3(signature = (wrapper, connection_scope="wrapper", share_lock_callbacks=true,
                        tls_sessions="wrapper"))]
    fn new(
        wrapper: PyRef<'_, NativeWrapper>,
        connection_scope: &str,
        share_lock_callbacks: bool,
        tls_sessions: &str,
    ) -> PyResult<NativeSession> {
        let scope = match connection_scope {
            "session" => ShareScope::Session,
            "wrapper" => ShareScope::Wrapper,
            other => {
                return Err(Error::Value(format!(
                    "Invalid connection_scope: {other} (expected \"session\" or \"wrapper\")"
                ))
                .into())
            }
        };
        let tls = TlsSessions::parse(tls_sessions)?;
        let engine = wrapper.engine().clone();
        engine.check_usable()?;
        let open = Open::new(scope, tls, share_lock_callbacks)?;
        let id = engine.new_session_id();
        Ok(NativeSession {
            engine,
            open: Some(open),
            id,
            scope,
            tls,
            lock_callbacks: share_lock_callbacks,
        })
    }

    /// Starts one transfer; returns (future, token). The token cancels it.
    #[pyo3(signature = (method, url, headers, body, cookie, options))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Vec<String>,
        body: Option<Vec<u8>>,
        cookie: Option<&str>,
        options: &Bound<'_, TransferOptions>,
    ) -> PyResult<(Py<PyAny>, usize)> {
        let open = self.open()?;
        self.engine.check_usable()?; // an atomic read: no system call
        let spec = RequestSpec {
            method,
            url,
            header_lines: headers,
            body,
            cookie,
            options: options.get(),
            tls_session_cache: self.tls != TlsSessions::Off,
            release_idle_tls_buffers: self.scope == ShareScope::Session,
        };
        let mut easy = open.pool.borrow_mut().get()?;
        if let Err(err) = prepare(&mut easy, spec) {
            if easy.reset().is_ok() {
                open.pool.borrow_mut().put(easy);
            }
            return Err(err.into());
        }
        self.engine.start(py, easy, &open.pool, self.id)
    }

    /// Removes a transfer whose awaiting task was cancelled; unknown tokens are ignored.
    fn cancel(&self, token: usize) {
        self.engine.cancel(token);
    }

    /// The jar as Netscape cookie-file lines (CURLINFO_COOKIELIST).
    fn cookie_lines(&self) -> PyResult<Vec<String>> {
        Ok(self.open()?.share.cookie_lines()?)
    }

    /// One CURLOPT_COOKIELIST command: "ALL", "SESS", a "Set-Cookie:" or Netscape line.
    fn cookie_command(&mut self, command: &str) -> PyResult<()> {
        let open = self
            .open
            .as_mut()
            .ok_or(Error::Closed("the session is closed"))?;
        Ok(open.share.cookie_command(command)?)
    }

    /// Drops this session's connections (in "session" scope), keeping its cookies: a fresh
    /// share replaces the old one, whose pool closes once its last transfer has finished.
    /// Used after a timeout, when a multiplexed connection may be dead (a peer that stopped
    /// reading) yet would be chosen again for the next request.
    fn recycle_connections(&mut self) -> PyResult<()> {
        if self.scope != ShareScope::Session {
            return Ok(());
        }
        let old = self
            .open
            .as_ref()
            .ok_or(Error::Closed("the session is closed"))?;
        let cookies = old.share.cookie_lines()?;
        let mut fresh = Open::new(self.scope, self.tls, self.lock_callbacks)?;
        for line in &cookies {
            fresh.share.cookie_command(line)?;
        }
        self.open = Some(fresh);
        Ok(())
    }

    /// Fails requests still in flight, then frees the idle handles and (once the failed
    /// transfers have released it) the share with its connections.
    fn close(&mut self, py: Python<'_>) {
        if self.open.is_some() {
            self.engine.abort(
                py,
                Some(self.id),
                "the session was closed with the request in flight",
            );
            self.open = None;
        }
    }

    #[getter]
    fn closed(&self) -> bool {
        self.open.is_none()
    }
}

impl Drop for NativeSession {
    fn drop(&mut self) {
        // A collected session behaves as a closed one: its transfers fail instead of hanging.
        if self.open.is_some() {
            Python::attach(|py| {
                self.engine.abort(
                    py,
                    Some(self.id),
                    "the session was garbage-collected with the request in flight",
                )
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_session_policies_parse() {
        assert_eq!(TlsSessions::parse("wrapper").unwrap(), TlsSessions::Wrapper);
        assert_eq!(TlsSessions::parse("session").unwrap(), TlsSessions::Session);
        assert_eq!(TlsSessions::parse("off").unwrap(), TlsSessions::Off);
        assert!(matches!(TlsSessions::parse("none"), Err(Error::Value(_))));
    }
}
