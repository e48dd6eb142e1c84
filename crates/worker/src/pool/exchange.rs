//! One request and its response on a worker's socket, under one deadline.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use zeval_sandbox::HostCalls;

use crate::protocol::{Request, Response, read_frame};

use super::Worker;

pub(super) enum Exchange {
    /// The worker did not answer by the deadline; `in_host_calls` of the time went to
    /// answering its host calls, when it was not running.
    TimedOut { in_host_calls: Duration },
    /// The worker closed the socket, or sent something that is not a response.
    Broken(String),
}

/// The deadlines of one exchange.
pub(super) struct Deadlines {
    /// The call's own: what a host call is given.
    pub(super) call: Instant,
    /// When the parent stops waiting for the worker (the call's plus the kill margin).
    pub(super) kill: Instant,
}

/// The handler of a call's host calls, and the largest request it takes.
pub(super) struct HostCallsWithin<'a> {
    pub(super) host: &'a mut dyn HostCalls,
    pub(super) max_request_bytes: usize,
}

/// Sends `request` and reads the response until the kill deadline, reading at most
/// `max_frame` per frame. Host calls the worker sends meanwhile go to `host` (on this
/// thread; the time they take counts against the same deadlines); a worker that sends one
/// without a handler, or one over its size limit, breaks the protocol.
pub(super) fn exchange(
    worker: &mut Worker,
    request: &Request<'_>,
    deadlines: Deadlines,
    max_frame: usize,
    mut host: Option<HostCallsWithin<'_>>,
    spin: Duration,
) -> Result<Response, Exchange> {
    let mut socket = Deadlined::new(&worker.socket, deadlines.kill);
    socket.spin_until = Some(Instant::now() + spin).filter(|_| !spin.is_zero());
    let mut in_host_calls = Duration::ZERO;
    socket
        .write_all(&request.to_frame())
        .map_err(|e| frame_error(e.into(), in_host_calls))?;
    loop {
        let frame =
            read_frame(&mut socket, max_frame).map_err(|e| frame_error(e, in_host_calls))?;
        match Response::decode(&frame).map_err(|e| Exchange::Broken(e.to_string()))? {
            Response::HostCall(call) => {
                let Some(host) = host.as_mut() else {
                    return Err(Exchange::Broken(
                        "a host call in a call that takes none".to_owned(),
                    ));
                };
                if call.len() > host.max_request_bytes {
                    return Err(Exchange::Broken(format!(
                        "a host call of {} bytes, over the limit of {}",
                        call.len(),
                        host.max_request_bytes
                    )));
                }
                let called = Instant::now();
                let answer = host.host.call(&call, deadlines.call);
                in_host_calls += called.elapsed();
                socket
                    .write_all(&Request::HostAnswer(&answer).to_frame())
                    .map_err(|e| frame_error(e.into(), in_host_calls))?;
            }
            response => return Ok(response),
        }
    }
}

/// The socket with one deadline for a whole exchange: every read and write is given only
/// the time left, so a worker that trickles its answer a byte at a time (or stops reading)
/// cannot stretch the call past the deadline.
pub(super) struct Deadlined<'a> {
    socket: &'a UnixStream,
    deadline: Instant,
    /// Until when a read that finds nothing checks again at once (yielding the CPU to any
    /// other thread that wants it) instead of sleeping in `poll`.
    spin_until: Option<Instant>,
}

impl<'a> Deadlined<'a> {
    pub(super) fn new(socket: &'a UnixStream, deadline: Instant) -> Self {
        Self {
            socket,
            deadline,
            spin_until: None,
        }
    }

    fn arm(
        &self,
        set: impl FnOnce(Option<Duration>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        match self
            .deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
        {
            Some(left) => set(Some(left)),
            None => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

impl Read for Deadlined<'_> {
    /// Reads what is there; when nothing is, waits for it with `poll` until the deadline.
    ///
    /// Not a blocking `recv` under `SO_RCVTIMEO`: a thread asleep in `recv` on a Unix socket
    /// is woken whenever the peer reads what this side wrote (the kernel's "write space"
    /// wake-up reaches every waiter on the socket), so each call's worker, reading its
    /// request, woke its caller for nothing: two context switches, on the CPU they share
    /// ([`super::colocate`]). `poll` waiting for input only is not woken by that.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use rustix::event::{PollFd, PollFlags, poll};
        use rustix::net::{RecvFlags, recv};
        loop {
            match recv(self.socket, &mut *buf, RecvFlags::DONTWAIT) {
                Ok((read, _)) => return Ok(read),
                Err(rustix::io::Errno::AGAIN) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(error) => return Err(error.into()),
            }
            if let Some(until) = self.spin_until {
                if Instant::now() < until.min(self.deadline) {
                    std::thread::yield_now();
                    continue;
                }
                self.spin_until = None;
            }
            let left = self
                .deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or(std::io::ErrorKind::TimedOut)?;
            let timeout = rustix::time::Timespec::try_from(left)
                .map_err(|_| std::io::Error::other("a deadline beyond the clock's range"))?;
            let mut fds = [PollFd::new(self.socket, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) => return Err(std::io::ErrorKind::TimedOut.into()),
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.arm(|left| self.socket.set_write_timeout(left))?;
        (&*self.socket).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn frame_error(error: crate::protocol::FrameError, in_host_calls: Duration) -> Exchange {
    match error {
        crate::protocol::FrameError::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Exchange::TimedOut { in_host_calls }
        }
        other => Exchange::Broken(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// How many times this thread has gone to sleep (`/proc/thread-self/status`).
    fn times_slept() -> u64 {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn waiting_for_the_answer_is_not_woken_when_the_worker_reads_the_request() {
        let (caller, worker) = UnixStream::pair().unwrap();
        let peer = std::thread::spawn(move || {
            let mut request = [0u8; 5];
            // The caller is asleep in its read by then; reading what it wrote gives it its
            // write space back, which wakes a thread asleep in `recv` on the socket.
            std::thread::sleep(Duration::from_millis(100));
            (&worker).read_exact(&mut request).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            (&worker).write_all(b"answer").unwrap();
            request
        });
        (&caller).write_all(b"hello").unwrap();
        let before = times_slept();
        let mut answer = [0u8; 6];
        Deadlined::new(&caller, Instant::now() + Duration::from_secs(30))
            .read_exact(&mut answer)
            .unwrap();
        let slept = times_slept() - before;
        assert_eq!(&answer, b"answer");
        assert_eq!(&peer.join().unwrap(), b"hello");
        assert_eq!(slept, 1, "the caller slept once, until the answer came");
    }

    #[test]
    fn a_read_gives_up_at_the_deadline() {
        let (caller, _worker) = UnixStream::pair().unwrap();
        let started = Instant::now();
        let mut buffer = [0u8; 4];
        let error = Deadlined::new(&caller, started + Duration::from_millis(100))
            .read(&mut buffer)
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
