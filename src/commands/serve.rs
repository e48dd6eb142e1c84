//! `zeval serve`: the orchestrator API (with objects, testers, metrics) and the evaluator API,
//! in one process or split by `--role`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use zeval_evaluator::Evaluator;
use zeval_server::config::{Config, Role};
use zeval_server::guest_lanes::{GuestLanes, LANE_WAIT};
use zeval_server::{Metrics, ServeError, Services};

/// Run the services. Settings come from `--config FILE` (see zeval.toml), then `ZEVAL_*`
/// environment variables, then these flags.
#[derive(clap::Args)]
pub(crate) struct ServeCommand {
    /// Which services to run: all (default), orchestrator or evaluator.
    #[arg(long)]
    role: Option<Role>,
    /// Address of the orchestrator API (default 127.0.0.1:6254).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Address of the evaluator API (default 127.0.0.1:6927).
    #[arg(long, value_name = "ADDR")]
    evaluator_listen: Option<SocketAddr>,
    /// Directory of the embedded store (default ./zeval-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The store's database instead of `<data-dir>/zeval.sqlite`: `postgres://…` (PostgreSQL,
    /// shared by several nodes) or `sqlite://PATH` (also `ZEVAL_DATABASE_URL`).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// A TOML configuration file (see zeval.toml at the repository root).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ServeCommand {
    /// The configuration in effect: file, then environment, then flags.
    pub(crate) fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        if let Some(role) = self.role {
            config.role = role;
        }
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(listen) = self.evaluator_listen {
            config.evaluator_listen = listen;
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database_url {
            config.database_url = Some(url.clone());
        }
        Ok(config)
    }

    pub(crate) fn execute(self) -> anyhow::Result<ExitCode> {
        let config = self.config()?;
        zeval_server::serve(config, build).context("zeval serve")?;
        Ok(ExitCode::SUCCESS)
    }
}

/// The backends of each role: the store and orchestrator for the orchestrator side, the
/// sandboxed evaluator for the evaluator side.
fn build(config: &Config, metrics: &Arc<Metrics>) -> Result<Services, ServeError> {
    // Whatever runs in this process runs in workers started from this binary: the evaluator
    // of an evaluator node, and what an orchestrator node's `[evaluators]` leaves to itself,
    // loaded on its first call.
    let workers = worker_program();
    zeval_server::evaluators::start_workers_from(workers.clone());
    let evaluator = match config.role {
        Role::All | Role::Evaluator => Some(Arc::new(
            zeval_server::evaluators::local_evaluator(config, workers.as_deref())
                .map_err(|e| ServeError::Setup(e.to_string()))?,
        )),
        Role::Orchestrator => None,
    };
    let orchestrator = match config.role {
        Role::All | Role::Orchestrator => Some(zeval_server::backends::orchestrator_state(
            config,
            metrics,
            evaluator.clone(),
        )?),
        Role::Evaluator => None,
    };
    let evaluator = match evaluator {
        Some(evaluator) => Some(evaluator_router(config, evaluator)?),
        None => None,
    };
    Ok(Services {
        orchestrator,
        evaluator,
    })
}

/// The evaluator API: with guests in this process, its calls run on guest lanes
/// (`limits.guest_lanes`); through worker processes, on tokio's blocking threads, since a
/// lane would wait for the worker.
pub(crate) fn evaluator_router(
    config: &Config,
    evaluator: Arc<Evaluator>,
) -> Result<Router, ServeError> {
    let lanes = config.guest_lanes(zeval_server::available_cpus());
    if evaluator.worker_pool().is_some() || lanes == 0 {
        return Ok(zeval_server::evaluator_api::router(evaluator));
    }
    let lanes = GuestLanes::start(lanes, config.limits.worker_stack_bytes, LANE_WAIT)
        .map_err(|e| ServeError::Setup(format!("cannot start the guest lanes: {e}")))?;
    Ok(zeval_server::evaluator_api::router_on_lanes(
        evaluator, lanes,
    ))
}

/// This binary, which serves as a worker process with the argument `worker`.
fn worker_program() -> Option<std::path::PathBuf> {
    match std::env::current_exe() {
        Ok(path) => Some(path),
        Err(error) => {
            tracing::error!(%error, "cannot find this program to start workers; guests run in process");
            None
        }
    }
}
