//! One request and its response on a worker's socket, under one deadline.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use zeval_sandbox::HostCalls;

use crate::protocol::{Request, Response, read_frame};

use super::Worker;

pub(super) enum Exchange {
    /// The worker did not answer by the deadline.
    TimedOut,
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
) -> Result<Response, Exchange> {
    let mut socket = Deadlined::new(&worker.socket, deadlines.kill);
    socket
        .write_all(&request.to_frame())
        .map_err(|e| frame_error(e.into()))?;
    loop {
        let frame = read_frame(&mut socket, max_frame).map_err(frame_error)?;
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
                let answer = host.host.call(&call, deadlines.call);
                socket
                    .write_all(&Request::HostAnswer(&answer).to_frame())
                    .map_err(|e| frame_error(e.into()))?;
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
}

impl<'a> Deadlined<'a> {
    pub(super) fn new(socket: &'a UnixStream, deadline: Instant) -> Self {
        Self { socket, deadline }
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
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arm(|left| self.socket.set_read_timeout(left))?;
        (&*self.socket).read(buf)
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

fn frame_error(error: crate::protocol::FrameError) -> Exchange {
    match error {
        crate::protocol::FrameError::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Exchange::TimedOut
        }
        other => Exchange::Broken(other.to_string()),
    }
}
