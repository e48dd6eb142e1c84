//! Capped in-memory stdout/stderr for the guest.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Largest write WASI preview 1 hands to a stream at once.
const WRITE_PERMIT: usize = 4096;

/// A memory pipe that traps the guest as soon as it writes past `capacity` (instead of
/// returning a short write the guest might ignore or retry forever) and remembers that it did.
#[derive(Clone)]
pub(crate) struct CappedPipe {
    capacity: usize,
    buffer: Arc<Mutex<Vec<u8>>>,
    overflowed: Arc<AtomicBool>,
}

/// The error a [`CappedPipe`] traps with.
#[derive(Debug, thiserror::Error)]
#[error("output limit of {0} bytes exceeded")]
pub(crate) struct OutputOverflow(usize);

impl CappedPipe {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            buffer: Arc::default(),
            overflowed: Arc::default(),
        }
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Appends `bytes`, or marks the pipe overflowed and keeps what fitted.
    pub(crate) fn append(&self, bytes: &[u8]) -> Result<(), OutputOverflow> {
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.capacity - buffer.len();
        if bytes.len() > room {
            buffer.extend_from_slice(&bytes[..room]);
            self.overflowed.store(true, Ordering::Relaxed);
            return Err(OutputOverflow(self.capacity));
        }
        buffer.extend_from_slice(bytes);
        Ok(())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.append(&bytes)
            .map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always grant a full permit so that crossing the cap is a write, which traps.
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            self.append(bytes)
                .map(|()| bytes.len())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::StorageFull, e)),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_fits_and_reports_overflow() {
        let pipe = CappedPipe::new(5);
        assert!(pipe.append(b"abc").is_ok());
        assert!(!pipe.overflowed());
        assert!(pipe.append(b"def").is_err());
        assert!(pipe.overflowed());
        assert_eq!(pipe.take(), b"abcde");
    }

    #[test]
    fn exactly_full_is_not_an_overflow() {
        let pipe = CappedPipe::new(3);
        assert!(pipe.append(b"abc").is_ok());
        assert!(!pipe.overflowed());
    }
}
