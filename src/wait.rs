//! Blocking without spinning: `poll(2)` on a socket plus a [`Waker`] another thread can ring.
//!
//! A connection thread must wake up for either of two things: bytes from its client, or
//! a message the application wants to send. tungstenite and rustls cannot be split into
//! a reading and a writing half, so one thread waits on both at once: the socket and a
//! per-connection eventfd (a pipe where there is no eventfd), with the nearest timer as
//! the timeout. An idle connection therefore costs no CPU at all.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};

/// A wake-up signal for one thread blocked in [`wait`].
///
/// Ringing it many times before the thread wakes costs one system call: the `pending`
/// flag remembers that the file descriptor is already readable.
#[derive(Debug)]
pub(crate) struct Waker {
    read: OwnedFd,
    /// The write end of a pipe; `None` for an eventfd, which is read and written alike.
    write: Option<OwnedFd>,
    pending: AtomicBool,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        let (read, write) = new_fd()?;
        Ok(Waker { read, write, pending: AtomicBool::new(false) })
    }

    /// Wakes the waiting thread (or makes its next [`wait`] return at once).
    pub(crate) fn wake(&self) {
        if self.pending.swap(true, Ordering::SeqCst) {
            return;
        }
        let fd = self.write.as_ref().unwrap_or(&self.read);
        // An eventfd adds the value to its counter; a pipe takes one byte. Either can only
        // fail when already readable (counter/pipe full), which is all we want anyway.
        let _ = rustix::io::write(fd, &1u64.to_ne_bytes()[..self.write_len()]);
    }

    /// Consumes a wake-up. Call before looking at whatever the wake-up announced, so a
    /// wake that races with the look is never lost: the descriptor is drained first and
    /// the flag cleared after, so a concurrent `wake` either sees the flag still set (and
    /// its message is found by the look that follows) or rings the descriptor again.
    pub(crate) fn reset(&self) {
        let mut buf = [0u8; 64];
        // An eventfd's counter empties in one read; a pipe holds a byte per ring, and is
        // empty once a read returns less than it was offered.
        while matches!(rustix::io::read(&self.read, &mut buf), Ok(n) if self.write.is_some() && n == buf.len()) {}
        self.pending.store(false, Ordering::SeqCst);
    }

    fn write_len(&self) -> usize {
        if self.write.is_some() {
            1
        } else {
            8
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn new_fd() -> io::Result<(OwnedFd, Option<OwnedFd>)> {
    use rustix::event::{eventfd, EventfdFlags};
    let fd = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
    Ok((fd, None))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn new_fd() -> io::Result<(OwnedFd, Option<OwnedFd>)> {
    let (read, write) = rustix::pipe::pipe()?;
    rustix::io::ioctl_fionbio(&read, true)?;
    rustix::io::ioctl_fionbio(&write, true)?;
    Ok((read, Some(write)))
}

/// What [`wait_for`] waits for on the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interest {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

impl Interest {
    /// Writability only: for a thread that must not read (its client's output is not
    /// leaving) or has nothing more to read (it is closing), and that would otherwise
    /// wake at once, again and again, while the client keeps sending.
    pub(crate) const WRITE: Interest = Interest { read: false, write: true };
}

/// Blocks until the socket is readable (or writable, if `want_write`), the waker rings,
/// or `deadline` passes: whichever comes first. Returns whether the waker rang; the
/// caller then [`reset`](Waker::reset)s it. Callers simply try their reads and writes
/// after every return (errors and hang-ups show up there) and recheck their clocks.
pub(crate) fn wait(socket: &impl AsFd, want_write: bool, waker: &Waker, deadline: Option<Instant>) -> io::Result<bool> {
    wait_for(socket, Interest { read: true, write: want_write }, waker, deadline)
}

/// [`wait`], for the readiness in `interest` only. Errors and hang-ups end the wait
/// whatever the interest.
pub(crate) fn wait_for(
    socket: &impl AsFd,
    interest: Interest,
    waker: &Waker,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    wait_ready(socket, interest, waker, deadline).map(|woken| woken.waker)
}

/// What ended a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Woken {
    /// The waker rang.
    pub(crate) waker: bool,
    /// The socket reported what was asked of it, an error or a hang-up. When `false`, it
    /// had nothing to read at the time of the wait: a read would only say so again.
    pub(crate) socket: bool,
}

/// [`wait_for`], telling also whether the socket was ready.
pub(crate) fn wait_ready(
    socket: &impl AsFd,
    interest: Interest,
    waker: &Waker,
    deadline: Option<Instant>,
) -> io::Result<Woken> {
    let mut flags = PollFlags::empty();
    if interest.read {
        flags |= PollFlags::IN;
    }
    if interest.write {
        flags |= PollFlags::OUT;
    }
    let mut fds = [PollFd::new(socket, flags), PollFd::new(&waker.read, PollFlags::IN)];
    let waker = poll(&mut fds, deadline)?;
    Ok(Woken { waker, socket: !fds[0].revents().is_empty() })
}

/// Like [`wait`], for several sockets at once, each for reading: the acceptor's
/// listening sockets, one per address.
pub(crate) fn wait_readable(sockets: &[impl AsFd], waker: &Waker, deadline: Option<Instant>) -> io::Result<bool> {
    let mut fds: Vec<PollFd<'_>> = sockets.iter().map(|socket| PollFd::new(socket, PollFlags::IN)).collect();
    fds.push(PollFd::new(&waker.read, PollFlags::IN));
    poll(&mut fds, deadline)
}

/// Polls `fds`, the waker's last; returns whether the waker rang.
fn poll(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> io::Result<bool> {
    let timeout = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
    match rustix::event::poll(fds, timeout.as_ref()) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    Ok(fds.last().is_some_and(|waker| waker.revents().contains(PollFlags::IN)))
}

fn timespec(d: std::time::Duration) -> Timespec {
    // Round up to the next millisecond: waking a hair early would only spin once more.
    let d = d + std::time::Duration::from_nanos(999_999);
    Timespec { tv_sec: d.as_secs() as _, tv_nsec: (d.subsec_millis() * 1_000_000) as _ }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn many_wakes_one_reset() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let waker = Waker::new().unwrap();
        for _ in 0..1000 {
            waker.wake();
        }
        assert!(wait(&a, false, &waker, Some(Instant::now() + Duration::from_secs(5))).unwrap());
        waker.reset();
        assert!(!wait(&a, false, &waker, Some(Instant::now())).unwrap(), "reset must consume every earlier wake");
        waker.wake();
        let woken = wait(&a, false, &waker, Some(Instant::now() + Duration::from_secs(5))).unwrap();
        assert!(woken, "a wake after reset must ring again");
    }

    #[test]
    fn input_does_not_end_a_wait_for_writability_only() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut b, b"input").unwrap();
        // Fill a's send buffer, so that it is not writable either.
        a.set_nonblocking(true).unwrap();
        while std::io::Write::write(&mut &a, &[0; 4096]).is_ok() {}
        let waker = Waker::new().unwrap();
        let start = Instant::now();
        assert!(!wait_for(&a, Interest::WRITE, &waker, Some(start + Duration::from_millis(20))).unwrap());
        assert!(start.elapsed() >= Duration::from_millis(20), "readable input ended the wait");
    }

    #[test]
    fn deadline_passes() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let waker = Waker::new().unwrap();
        let start = Instant::now();
        assert!(!wait(&a, false, &waker, Some(start + Duration::from_millis(20))).unwrap());
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
