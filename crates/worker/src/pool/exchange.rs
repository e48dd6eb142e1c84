//! One request and its response on a worker's socket, under one deadline.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::protocol::{Request, Response, read_frame};

use super::Worker;

pub(super) enum Exchange {
    /// The worker did not answer by the deadline.
    TimedOut,
    /// The worker closed the socket, or sent something that is not a response.
    Broken(String),
}

/// Sends `request` and reads the response until `deadline`, reading at most `max_frame`.
pub(super) fn exchange(
    worker: &mut Worker,
    request: &Request<'_>,
    deadline: Instant,
    max_frame: usize,
) -> Result<Response, Exchange> {
    let mut socket = Deadlined::new(&worker.socket, deadline);
    socket
        .write_all(&request.to_frame())
        .map_err(|e| frame_error(e.into()))?;
    let frame = read_frame(&mut socket, max_frame).map_err(frame_error)?;
    Response::decode(&frame).map_err(|e| Exchange::Broken(e.to_string()))
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
