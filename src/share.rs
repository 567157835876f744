//! A session's libcurl share handle and its cookie jar.
//!
//! The share always holds the cookie jar; in "session" scope it also holds the connection pool
//! and DNS cache, so one session behaves as one virtual user; with `tls_sessions="session"` it
//! holds the TLS session cache too (otherwise new connections resume from the wrapper's). Locking: libcurl
//! calls the lock callbacks only when set, and sharing only needs locks across threads. The share
//! and every type holding it are `!Send` (`Rc`), and the Python classes that own them are
//! `unsendable`, so the share never leaves its event loop's thread and the installed lock
//! callbacks can be no-ops. See docs/DESIGN.md for the measured cost of those callbacks.

use std::rc::Rc;

use crate::checks::c_string;
use crate::error::Error;
use crate::ffi::{Share, ShareScope};
use crate::sink::{Handle, ResponseSink};

pub struct SessionShare {
    share: Rc<Share>,
    /// A handle that is never added to a multi: the door to the shared cookie jar. Made on
    /// first use: most virtual users never read their jar, and an easy handle is most of what
    /// an idle session would otherwise cost.
    jar: std::cell::OnceCell<Handle>,
}

impl SessionShare {
    pub fn new(
        scope: ShareScope,
        own_tls_sessions: bool,
        lock_callbacks: bool,
    ) -> Result<SessionShare, Error> {
        let share =
            Rc::new(Share::new(scope, own_tls_sessions, lock_callbacks).map_err(Error::Internal)?);
        Ok(SessionShare {
            share,
            jar: std::cell::OnceCell::new(),
        })
    }

    pub fn handle(&self) -> Rc<Share> {
        self.share.clone()
    }

    fn jar(&self) -> Result<&Handle, Error> {
        if let Some(jar) = self.jar.get() {
            return Ok(jar);
        }
        let mut jar = Handle::new(ResponseSink::default()).map_err(Error::Internal)?;
        jar.attach_share(self.share.clone())
            .map_err(Error::from_code)?;
        Ok(self.jar.get_or_init(|| jar))
    }

    /// The whole jar as Netscape cookie-file lines.
    pub fn cookie_lines(&self) -> Result<Vec<String>, Error> {
        self.jar()?.cookie_list().map_err(Error::from_code)
    }

    /// Feeds one CURLOPT_COOKIELIST command: a "Set-Cookie:" line, a Netscape line, "ALL",
    /// "SESS", "FLUSH" or "RELOAD".
    pub fn cookie_command(&mut self, command: &str) -> Result<(), Error> {
        let line = c_string("cookie line", command)?;
        self.jar()?;
        let jar = self.jar.get_mut().expect("made just above");
        jar.set_cstr(curl_sys::CURLOPT_COOKIELIST, &line)
            .map_err(Error::from_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_set_erase_session_and_all() {
        let mut s = SessionShare::new(ShareScope::Session, true, true).unwrap();
        s.cookie_command("Set-Cookie: sess=1; domain=example.test")
            .unwrap();
        s.cookie_command(
            "Set-Cookie: keep=2; domain=example.test; expires=Fri, 01 Jan 2100 00:00:00 GMT",
        )
        .unwrap();
        assert_eq!(s.cookie_lines().unwrap().len(), 2);
        s.cookie_command("SESS").unwrap();
        let left = s.cookie_lines().unwrap();
        assert_eq!(left.len(), 1);
        assert!(left[0].contains("\tkeep\t2"), "{left:?}");
        s.cookie_command("ALL").unwrap();
        assert!(s.cookie_lines().unwrap().is_empty());
    }

    #[test]
    fn nul_in_cookie_command_is_refused() {
        let mut s = SessionShare::new(ShareScope::Wrapper, false, true).unwrap();
        assert!(matches!(s.cookie_command("a\0b"), Err(Error::Value(_))));
    }
}
