//! Memory accounting and limiting for one call.

/// Caps linear memory at the call's limit and records the peak. Refusing a growth traps the
/// guest (instead of letting `memory.grow` return -1), so an allocation failure deep inside
/// an interpreter surfaces as [`crate::SandboxError::MemoryLimit`] rather than as whatever
/// the interpreter makes of a null pointer.
pub(crate) struct CallLimiter {
    memory_limit: usize,
    table_limit: usize,
    pub(crate) peak_memory: usize,
    pub(crate) memory_limit_hit: bool,
}

impl CallLimiter {
    pub(crate) fn new(memory_limit: usize, table_limit: usize) -> Self {
        Self {
            memory_limit,
            table_limit,
            peak_memory: 0,
            memory_limit_hit: false,
        }
    }
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit || maximum.is_some_and(|max| desired > max) {
            self.memory_limit_hit = true;
            wasmtime::bail!(
                "linear memory would grow to {desired} bytes, past the limit of {} bytes",
                self.memory_limit
            );
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // The OS refused pages below our own limit: still the memory limit from the guest's
        // point of view, and never something to hide from it.
        self.memory_limit_hit = true;
        Err(error)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_limit)
    }

    // One module instance per call: anything more is not one of our guests.
    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn records_the_peak_and_refuses_past_the_limit() {
        let mut limiter = CallLimiter::new(1 << 20, 10);
        assert!(limiter.memory_growing(0, 65536, None).unwrap());
        assert!(limiter.memory_growing(65536, 1 << 20, None).unwrap());
        assert_eq!(limiter.peak_memory, 1 << 20);
        assert!(
            limiter
                .memory_growing(1 << 20, (1 << 20) + 65536, None)
                .is_err()
        );
        assert!(limiter.memory_limit_hit);
        assert_eq!(limiter.peak_memory, 1 << 20);
    }
}
