//! Idle easy handles: each session's own, and the thread's spares from closed sessions. A
//! request takes a handle from here instead of making one; a finished one comes back reset.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use crate::error::Error;
use crate::ffi::Share;
use crate::sink::{Handle, ResponseSink};

/// Idle easy handles of one session, already attached to its share: reused instead of made anew
/// for every request (`curl_easy_reset` keeps their buffers and caches).
pub struct EasyPool {
    idle: Vec<Handle>,
    share: Rc<Share>,
}

/// More idle handles than this are freed: a burst should not pin memory for the session's life.
const MAX_IDLE: usize = 256;

thread_local! {
    /// Handles of closed sessions, detached from their shares, for the next sessions made on
    /// this thread: a load test makes a session per journey, and making an easy handle costs
    /// more than re-attaching one. Thread-local because handles never leave their thread.
    static SPARE: RefCell<Vec<Handle>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a finished handle for a later session, or frees it when enough are kept.
pub fn spare(mut easy: Handle) {
    if easy.detach_share().is_ok() {
        let _ = SPARE.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < MAX_IDLE {
                spare.push(easy);
            }
        });
    }
}

impl EasyPool {
    pub fn new(share: Rc<Share>) -> EasyPool {
        EasyPool {
            idle: Vec::new(),
            share,
        }
    }

    pub fn get(&mut self) -> Result<Handle, Error> {
        if let Some(easy) = self.idle.pop() {
            return Ok(easy);
        }
        let spare = SPARE.try_with(|s| s.borrow_mut().pop()).ok().flatten();
        let mut easy = match spare {
            Some(easy) => easy,
            None => Handle::new(ResponseSink::default()).map_err(Error::Internal)?,
        };
        easy.attach_share(self.share.clone())
            .map_err(Error::from_code)?;
        Ok(easy)
    }

    pub fn put(&mut self, easy: Handle) {
        if self.idle.len() < MAX_IDLE {
            self.idle.push(easy);
        }
    }
}

impl Drop for EasyPool {
    fn drop(&mut self) {
        // The session is gone: its idle handles serve the next sessions instead.
        for easy in self.idle.drain(..) {
            spare(easy);
        }
    }
}

/// A finished handle goes back to its session's pool, or to the thread's spares if the
/// session is gone.
pub fn recycle(mut easy: Handle, pool: &Weak<RefCell<EasyPool>>) {
    if easy.reset().is_err() {
        return;
    }
    match pool.upgrade() {
        Some(pool) => pool.borrow_mut().put(easy),
        None => spare(easy),
    }
}
