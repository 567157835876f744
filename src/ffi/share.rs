//! RAII wrapper of a libcurl share handle (`CURLSH`).
//!
//! A `Share` is deliberately `!Send` and `!Sync` (it holds a raw pointer and a `PhantomData` of
//! `Rc`): libcurl only needs share locks when two threads use the share at once, and the type
//! system guarantees ours never leaves the thread that made it. That is what makes the no-op
//! lock callbacks sound.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::marker::PhantomData;
use std::rc::Rc;

use curl_sys::{curl_lock_access, curl_lock_data, CURLSHcode, CURL, CURLSH};

/// What a session's share holds besides cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareScope {
    /// Cookies, connections and DNS: one virtual user's own pools.
    Session,
    /// Cookies only: connections and DNS come from the multi, shared by all.
    Wrapper,
}

pub struct Share {
    raw: *mut CURLSH,
    owner_pid: u32,
    _not_send: PhantomData<Rc<()>>,
}

extern "C" fn noop_lock(_: *mut CURL, _: curl_lock_data, _: curl_lock_access, _: *mut c_void) {}
extern "C" fn noop_unlock(_: *mut CURL, _: curl_lock_data, _: *mut c_void) {}

fn check(code: CURLSHcode, what: &str) -> Result<(), String> {
    if code == curl_sys::CURLSHE_OK {
        Ok(())
    } else {
        Err(format!(
            "curl_share_setopt({what}) failed with CURLSHcode {code}"
        ))
    }
}

impl Share {
    /// A new share holding cookies, plus connections and DNS in `Session` scope, plus TLS
    /// sessions when `own_tls_sessions` (otherwise curl keeps them in the multi's cache, shared
    /// by every share without them). `lock_callbacks` installs the no-op lock/unlock pair (the
    /// default; off only to measure).
    pub fn new(
        scope: ShareScope,
        own_tls_sessions: bool,
        lock_callbacks: bool,
    ) -> Result<Share, String> {
        super::global_init();
        // SAFETY: curl_share_init has no preconditions; NULL is checked below.
        let raw = unsafe { curl_sys::curl_share_init() };
        if raw.is_null() {
            return Err("curl_share_init failed".into());
        }
        let share = Share {
            raw,
            owner_pid: super::process_id(),
            _not_send: PhantomData,
        };
        if lock_callbacks {
            let lock: curl_sys::curl_lock_function = noop_lock;
            let unlock: curl_sys::curl_unlock_function = noop_unlock;
            // SAFETY: `raw` is a live share; the callbacks are `extern "C"` fns with the exact
            // signatures curl documents for CURLSHOPT_LOCKFUNC/UNLOCKFUNC and never unwind.
            let rc =
                unsafe { curl_sys::curl_share_setopt(raw, curl_sys::CURLSHOPT_LOCKFUNC, lock) };
            check(rc, "LOCKFUNC")?;
            // SAFETY: as above.
            let rc =
                unsafe { curl_sys::curl_share_setopt(raw, curl_sys::CURLSHOPT_UNLOCKFUNC, unlock) };
            check(rc, "UNLOCKFUNC")?;
        }
        let mut data = vec![curl_sys::CURL_LOCK_DATA_COOKIE];
        if scope == ShareScope::Session {
            data.extend([
                curl_sys::CURL_LOCK_DATA_CONNECT,
                curl_sys::CURL_LOCK_DATA_DNS,
            ]);
        }
        if own_tls_sessions {
            data.push(curl_sys::CURL_LOCK_DATA_SSL_SESSION);
        }
        for d in data {
            // SAFETY: `raw` is live; CURLSHOPT_SHARE takes one curl_lock_data value.
            let rc = unsafe { curl_sys::curl_share_setopt(raw, curl_sys::CURLSHOPT_SHARE, d) };
            check(rc, "SHARE")?;
        }
        Ok(share)
    }

    pub(crate) fn as_ptr(&self) -> *mut CURLSH {
        self.raw
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if super::forked_since(self.owner_pid) {
            return;
        }
        // SAFETY: every easy handle that uses this share holds an `Rc<Share>` and is cleaned up
        // before the last `Rc` drops, so the share is no longer in use here (no CURLSHE_IN_USE).
        let rc = unsafe { curl_sys::curl_share_cleanup(self.raw) };
        debug_assert_eq!(rc, curl_sys::CURLSHE_OK, "curl_share_cleanup: {rc}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_is_made_and_cleaned_in_both_scopes() {
        for scope in [ShareScope::Session, ShareScope::Wrapper] {
            for locks in [true, false] {
                for tls in [true, false] {
                    let share = Share::new(scope, tls, locks).expect("share");
                    assert!(!share.as_ptr().is_null());
                }
            }
        }
    }
}
