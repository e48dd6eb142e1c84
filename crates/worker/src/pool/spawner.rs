//! The one thread that forks worker processes (see [`Spawner`]).

use std::process::{Child, Command};
use std::sync::Mutex;

/// The one thread that starts worker processes. A worker asks the kernel to kill it when its
/// parent goes (`PR_SET_PDEATHSIG`), and for the kernel the parent is the *thread* that
/// forked it: a worker forked from a short-lived thread (a request's blocking thread, a
/// background replacement) would die with that thread. So every fork happens here, on a
/// thread that lives exactly as long as the pool; when the pool is dropped the thread ends,
/// and every worker with it.
pub(super) struct Spawner {
    requests: Mutex<std::sync::mpsc::Sender<SpawnRequest>>,
}

type SpawnRequest = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);

impl Spawner {
    pub(super) fn start() -> std::io::Result<Self> {
        let (requests, incoming) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("zeval-worker-spawner".to_owned())
            .spawn(move || {
                for (mut command, answer) in incoming {
                    let _ = answer.send(command.spawn());
                }
            })?;
        Ok(Self {
            requests: Mutex::new(requests),
        })
    }

    pub(super) fn spawn(&self, command: Command) -> std::io::Result<Child> {
        let (answer, answered) = std::sync::mpsc::channel();
        let sent = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((command, answer));
        if sent.is_err() {
            return Err(std::io::Error::other("the worker spawner thread has ended"));
        }
        answered
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the worker spawner thread has ended")))
    }
}
