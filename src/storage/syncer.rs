//! The sync thread: fdatasync off the event loop.
//!
//! The loop appends records to the log's page cache (`pwrite`, microseconds) and hands the
//! fdatasync — the part that waits for the device, ~0.3 ms to many ms — to this one
//! thread, then goes on reading, proposing, committing and serving. When the sync returns,
//! the thread records up to which zxid the log is durable and wakes the loop (a mio
//! `Waker`, so the loop's poll returns). One sync is in flight at a time; everything
//! appended meanwhile is covered by the next one, so the batch per fsync grows with load
//! (group commit) without a timer.
//!
//! The thread touches only the file it is given: it never allocates after start-up,
//! prints nothing and takes no lock but its own mutex.
//!
//! Fault injection for tests: `ARBOR_FAULT_FSYNC_DELAY_MS=n` in the environment makes every
//! fdatasync take at least n ms longer, so tests can see that nothing waits on it that
//! should not and that nothing revealing a txn leaves before it (never set it otherwise).
//!
//! Contract: `request(file, upto)` only when `in_flight()` is false; `upto` is the last zxid
//! written to `file`, and every earlier segment is already durable (the log syncs a
//! segment itself before a batch continues in the next). `poll()` returns the completed
//! sync, if any; `wait()` blocks until none is in flight (before truncating or replacing
//! the log, so that no late completion speaks for records that no longer exist).

use std::fs::File;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::proto::Zxid;

use super::fsutil::datasync;

/// What the loop wakes up for.
pub trait Wake: Send + Sync {
    fn wake(&self);
}

impl Wake for mio::Waker {
    fn wake(&self) {
        // A failed wake only delays the loop until its next timer.
        let _ = mio::Waker::wake(self);
    }
}

#[derive(Default)]
struct State {
    request: Option<(Arc<File>, Zxid)>,
    done: Option<Result<Zxid, io::Error>>,
    /// How long the fdatasync of `done` took.
    took: std::time::Duration,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

pub struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    in_flight: Option<Zxid>,
    /// Duration of the last completed sync, until `take_took` reads it.
    took: Option<std::time::Duration>,
}

impl Syncer {
    pub fn start(wake: Arc<dyn Wake>) -> io::Result<Syncer> {
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), cv: Condvar::new() });
        let s = shared.clone();
        let delay = std::env::var("ARBOR_FAULT_FSYNC_DELAY_MS").ok().and_then(|v| v.parse().ok()).map(std::time::Duration::from_millis);
        let thread = std::thread::Builder::new().name("arbor-fsync".into()).spawn(move || run(&s, &*wake, delay))?;
        Ok(Syncer { shared, thread: Some(thread), in_flight: None, took: None })
    }

    pub fn in_flight(&self) -> Option<Zxid> {
        self.in_flight
    }

    pub fn request(&mut self, file: Arc<File>, upto: Zxid) {
        debug_assert!(self.in_flight.is_none(), "one sync at a time");
        let mut st = lock(&self.shared);
        st.request = Some((file, upto));
        self.in_flight = Some(upto);
        drop(st);
        self.shared.cv.notify_all();
    }

    /// The sync that completed, if one did.
    pub fn poll(&mut self) -> Option<Result<Zxid, io::Error>> {
        self.in_flight?;
        let mut st = lock(&self.shared);
        let done = st.done.take();
        if done.is_some() {
            self.in_flight = None;
            self.took = Some(st.took);
        }
        done
    }

    /// How long the fdatasync that `poll` or `wait` last returned took (once).
    pub fn take_took(&mut self) -> Option<std::time::Duration> {
        self.took.take()
    }

    /// Block until no sync is in flight; its result.
    pub fn wait(&mut self) -> Option<Result<Zxid, io::Error>> {
        self.in_flight?;
        let mut st = lock(&self.shared);
        loop {
            if let Some(done) = st.done.take() {
                self.in_flight = None;
                self.took = Some(st.took);
                return Some(done);
            }
            st = self.shared.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    // The thread cannot panic while holding the lock (nothing in it can), but a poisoned
    // lock still holds consistent data here.
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(shared: &Shared, wake: &dyn Wake, delay: Option<std::time::Duration>) {
    loop {
        let (file, upto) = {
            let mut st = lock(shared);
            loop {
                if st.stop {
                    return;
                }
                if let Some(r) = st.request.take() {
                    break r;
                }
                st = shared.cv.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let t0 = std::time::Instant::now();
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let result = datasync(&file).map(|()| upto);
        let took = t0.elapsed();
        drop(file);
        let mut st = lock(shared);
        st.done = Some(result);
        st.took = took;
        drop(st);
        shared.cv.notify_all();
        wake.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_sync_completes_wakes_the_loop_and_reports_its_zxid() {
        let d = tempfile::tempdir().expect("tmp");
        let f = Arc::new(File::create(d.path().join("f")).expect("file"));
        let woke = Arc::new(Count::default());
        let mut s = Syncer::start(woke.clone()).expect("thread");
        assert!(s.poll().is_none(), "nothing in flight");
        for i in 1..=20 {
            s.request(f.clone(), Zxid(i));
            assert_eq!(s.in_flight(), Some(Zxid(i)));
            let got = if i % 2 == 0 {
                s.wait()
            } else {
                let t0 = std::time::Instant::now();
                loop {
                    if let Some(r) = s.poll() {
                        break Some(r);
                    }
                    assert!(t0.elapsed() < std::time::Duration::from_secs(10), "sync never completed");
                    std::thread::yield_now();
                }
            };
            assert_eq!(got.expect("done").expect("fsync"), Zxid(i));
            assert_eq!(s.in_flight(), None);
            assert!(s.take_took().is_some(), "a completed sync reports its duration");
            assert!(s.take_took().is_none(), "once");
        }
        // The wake follows the result (it may land just after the loop saw the result).
        let t0 = std::time::Instant::now();
        while woke.0.load(Ordering::SeqCst) < 20 && t0.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::yield_now();
        }
        assert_eq!(woke.0.load(Ordering::SeqCst), 20);
        assert!(s.wait().is_none());
    }
}
