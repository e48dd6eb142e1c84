//! Busy threads of the test process, at normal priority, until dropped: other work holding
//! the CPUs, as other clients' calls would. Shared by the sandbox's, the worker pool's and the
//! end-to-end tests (`#[path]`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

pub(crate) struct BusyThreads {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl BusyThreads {
    /// `per_cpu` busy threads for each CPU of the machine.
    pub(crate) fn per_cpu(per_cpu: usize) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Self::start(per_cpu * cpus)
    }

    pub(crate) fn start(threads: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for BusyThreads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
