//! The threads a server starts besides its acceptor: parked handshake workers, and one
//! thread per WebSocket.
//!
//! A new client goes to a handshake worker, which runs its TLS handshake and HTTP request
//! under the handshake deadline. Only a client that gets its `101 Switching Protocols`
//! gets a thread of its own, started by the worker with the established session; a
//! client that fails, is refused, or is answered in plain HTTP costs no thread start.
//!
//! Why not the connection thread: the handshake is the deepest and most allocating work a
//! connection does, and a thread keeps what it touched for as long as it lives (the stack
//! pages of rustls and ring, and ~9 KiB that glibc's per-thread cache keeps of the small
//! blocks the handshake freed). So the connection thread, which lives as long as its
//! client, starts on fresh pages and holds only what the frame loop needs. Measured with
//! 1,000 idle connections: 42.8 KiB of RSS each with the handshake on the connection
//! thread, 27.5 KiB without. Why parked workers: a short-lived thread per handshake did
//! the same for memory but cost a second thread start and join per client.
//!
//! Workers start on demand, at most one per handshake in progress
//! ([`max_handshakes`](crate::ConfigBuilder::max_handshakes) bounds those), and retire
//! after [`RETIRE_AFTER`] without work; the last one stays parked (blocked, no timer) so
//! that an idle server costs no CPU and the next client starts no thread for its
//! handshake. Every thread, worker or connection, is joined by the acceptor once it says
//! it ended (its stack stays mapped until then), or by the shutdown.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::config::Limits;
use crate::connection::{self, Accepted};
use crate::wait::Waker;

/// How long a worker beyond the first waits for work before it ends.
const RETIRE_AFTER: Duration = Duration::from_secs(2);

/// The threads started so far that have not been joined, and the news of their ends.
#[derive(Debug)]
pub(crate) struct Started {
    handles: Mutex<Vec<JoinHandle<()>>>,
    /// How many threads have said they ended (each then rings `acceptor`).
    ended: AtomicUsize,
    acceptor: Arc<Waker>,
}

impl Started {
    pub(crate) fn new(acceptor: Arc<Waker>) -> Started {
        Started { handles: Mutex::default(), ended: AtomicUsize::new(0), acceptor }
    }

    /// Starts a thread that tells of its end, however it ends (a panic included).
    fn spawn(
        self: &Arc<Self>,
        name: String,
        stack_size: usize,
        body: impl FnOnce() + Send + 'static,
    ) -> io::Result<()> {
        let started = Arc::clone(self);
        let handle = thread::Builder::new().name(name).stack_size(stack_size).spawn(move || {
            // Made on the thread: a thread that never started is never counted as ended.
            let _ended = Ended(started);
            body();
        })?;
        self.lock().push(handle);
        Ok(())
    }

    /// How many threads have said they ended so far.
    pub(crate) fn ended(&self) -> usize {
        self.ended.load(Ordering::SeqCst)
    }

    /// Joins the threads that have finished, so none outlives its handle (a finished
    /// thread may still be exiting); returns how many.
    pub(crate) fn reap(&self) -> usize {
        let finished: Vec<_> = {
            let mut handles = self.lock();
            let (finished, running) = handles.drain(..).partition(|handle| handle.is_finished());
            *handles = running;
            finished
        };
        let count = finished.len();
        for handle in finished {
            let name = handle.thread().name().unwrap_or_default().to_owned();
            if handle.join().is_err() {
                // Connection threads and workers catch the panics of their work; this
                // one came from their cleanup.
                log::error!("{name}: panicked while ending");
            }
        }
        count
    }

    /// Every thread not joined yet, for the shutdown.
    pub(crate) fn take_all(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.handles.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Tells the acceptor that a thread has ended, so that it joins it soon: every thread
/// it joins has said so first, which keeps the count in step with the threads joined.
struct Ended(Arc<Started>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::SeqCst);
        self.0.acceptor.wake();
    }
}

/// The handshake workers, as the acceptor sees them. Dropped with the acceptor: the
/// workers then finish the clients they hold and end.
#[derive(Debug)]
pub(crate) struct Workers {
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    state: Mutex<PoolState>,
    /// Rung for each new client that an idle worker is to take, and at the end.
    wake: Condvar,
    max_workers: usize,
    worker_stack: usize,
    connection_stack: usize,
    started: Arc<Started>,
    /// Keeps the shutdown waiting until the last worker has ended.
    _alive: Sender<()>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Clients waiting for a worker. The acceptor admits at most `max_handshakes`
    /// clients in handshake at once, so this stays short.
    queue: VecDeque<Accepted>,
    workers: usize,
    /// Workers waiting for a client, and how many of them have been rung for one.
    idle: usize,
    rung: usize,
    closed: bool,
    next_number: u64,
}

/// What an idle worker does when its wait ends.
#[derive(Debug, PartialEq)]
enum Woken {
    /// Look for a client again (it was rung for one, or is needed parked).
    Stay,
    /// End: it waited [`RETIRE_AFTER`] for nothing, and another worker stays.
    Retire,
}

impl PoolState {
    /// Takes an idle worker whose wait ended out of `idle`; a worker that is to retire
    /// is counted out here, under the same lock that saw the others: two workers timing
    /// out together must not both count on the other staying, which would leave none.
    fn woken(&mut self, timed_out: bool) -> Woken {
        self.idle -= 1;
        if self.rung > 0 {
            self.rung -= 1;
        } else if timed_out && self.queue.is_empty() && self.workers > 1 {
            self.workers -= 1;
            return Woken::Retire;
        }
        Woken::Stay
    }
}

impl Workers {
    pub(crate) fn new(limits: &Limits, started: Arc<Started>, alive: Sender<()>) -> Workers {
        let pool = Pool {
            state: Mutex::default(),
            wake: Condvar::new(),
            max_workers: limits.max_handshakes.max(1),
            worker_stack: limits.thread_stack_size,
            connection_stack: connection::stack_size(limits),
            started,
            _alive: alive,
        };
        Workers { pool: Arc::new(pool) }
    }

    /// Hands a new client to an idle worker, or to a new one (or, when neither is
    /// there, to the first worker that is done). A client no worker can take is
    /// forgotten here.
    pub(crate) fn submit(&self, accepted: Accepted) -> io::Result<()> {
        let pool = &self.pool;
        let mut state = pool.lock();
        state.queue.push_back(accepted);
        if state.idle > state.rung {
            state.rung += 1;
            pool.wake.notify_one();
        } else if state.workers < pool.max_workers {
            if let Err(e) = pool.start_worker(state.next_number) {
                if state.workers == 0 {
                    if let Some(accepted) = state.queue.pop_back() {
                        accepted.abandon();
                    }
                    return Err(e);
                }
                log::debug!("no new handshake worker ({e}); the client waits for a busy one");
            } else {
                state.next_number += 1;
                state.workers += 1;
            }
        }
        Ok(())
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.pool.lock().closed = true;
        self.pool.wake.notify_all();
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start_worker(self: &Arc<Self>, number: u64) -> io::Result<()> {
        let pool = Arc::clone(self);
        self.started.spawn(format!("tinywss-hs-{number}"), self.worker_stack, move || pool.work())
    }

    /// A worker's life: handshakes, until it retires or the acceptor stops.
    fn work(self: Arc<Self>) {
        // Counts this worker out however it ends, a panic in a logger included.
        let mut leaving = Leaving { pool: &self, counted: true };
        let mut state = self.lock();
        loop {
            if let Some(accepted) = state.queue.pop_front() {
                drop(state);
                if !self.handshake(accepted, &mut leaving) {
                    return;
                }
                state = self.lock();
                continue;
            }
            if state.closed {
                return;
            }
            // The last worker waits without a timer: an idle server wakes for nothing.
            let last = state.workers == 1;
            state.idle += 1;
            let timed_out = if last {
                state = self.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
                false
            } else {
                let (guard, timeout) =
                    self.wake.wait_timeout(state, RETIRE_AFTER).unwrap_or_else(PoisonError::into_inner);
                state = guard;
                timeout.timed_out()
            };
            if state.woken(timed_out) == Woken::Retire {
                leaving.counted = false;
                return;
            }
        }
    }

    /// Runs one client's handshake; starts its connection thread if it got a WebSocket.
    /// `false` when this worker served the connection itself and must end.
    fn handshake(&self, accepted: Accepted, leaving: &mut Leaving<'_>) -> bool {
        let Some(established) = connection::handshake(accepted) else { return true };
        let (id, name) = (established.id(), format!("tinywss-conn-{}", established.id().0));
        // Shared with the new thread, so that it is not lost if the thread cannot start.
        let handoff = Arc::new(Mutex::new(Some(established)));
        let theirs = Arc::clone(&handoff);
        let spawned = self.started.spawn(name, self.connection_stack, move || {
            if let Some(established) = take(&theirs) {
                connection::serve(established);
            }
        });
        if let Err(e) = spawned {
            if let Some(established) = take(&handoff) {
                // Served here rather than dropped. This worker counts out first, so that
                // new clients get a worker of their own meanwhile, and ends afterwards.
                log::warn!("{id}: no thread for the connection ({e}); serving it on a handshake worker");
                leaving.count_out();
                connection::serve(established);
                return false;
            }
        }
        true
    }
}

/// Counts a worker out of the pool when it ends, however it ends.
struct Leaving<'a> {
    pool: &'a Pool,
    counted: bool,
}

impl Leaving<'_> {
    fn count_out(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.pool.lock().workers -= 1;
        }
    }
}

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.count_out();
    }
}

fn take<T>(cell: &Mutex<Option<T>>) -> Option<T> {
    cell.lock().unwrap_or_else(PoisonError::into_inner).take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::wait;
    use std::time::Instant;

    #[test]
    fn a_thread_that_panics_is_counted_as_ended_and_joined() {
        let acceptor = Arc::new(Waker::new().unwrap());
        let started = Arc::new(Started::new(Arc::clone(&acceptor)));
        started.spawn("test-panics".into(), 64 << 10, || panic!("a bug on a connection thread")).unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let woken = wait(&a, false, &acceptor, Some(Instant::now() + Duration::from_secs(10))).unwrap();
        assert!(woken, "the acceptor was not woken");
        assert_eq!(started.ended(), 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut reaped = 0;
        while reaped == 0 && Instant::now() < deadline {
            reaped = started.reap();
        }
        assert_eq!(reaped, 1, "the ended thread is joined");
        assert!(started.take_all().is_empty());
    }

    #[test]
    fn workers_timing_out_together_leave_one() {
        let mut state = PoolState { workers: 3, idle: 3, ..PoolState::default() };
        // All three time out before any of them has ended.
        let woken: Vec<_> = (0..3).map(|_| state.woken(true)).collect();
        assert_eq!(woken, [Woken::Retire, Woken::Retire, Woken::Stay]);
        assert_eq!((state.workers, state.idle), (1, 0));
    }

    #[test]
    fn a_rung_worker_stays_even_when_its_wait_timed_out() {
        let mut state = PoolState { workers: 2, idle: 2, rung: 1, ..PoolState::default() };
        assert_eq!(state.woken(true), Woken::Stay, "it takes the ring (the client is for it)");
        assert_eq!(state.woken(true), Woken::Retire);
        assert_eq!((state.workers, state.rung), (1, 0));
    }

    #[test]
    fn a_thread_that_never_started_is_not_counted_as_ended() {
        let started = Arc::new(Started::new(Arc::new(Waker::new().unwrap())));
        // A stack no mmap can give: the spawn fails.
        assert!(started.spawn("test-nostart".into(), 1 << 46, || {}).is_err());
        // Counted, it would keep the acceptor looking for a thread to join, for ever.
        assert_eq!(started.ended(), 0);
        assert_eq!(started.reap(), 0);
    }
}
