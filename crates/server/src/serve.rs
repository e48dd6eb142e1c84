//! Running the services: a multi-threaded tokio runtime whose threads (async workers and the
//! blocking pool where calls are orchestrated) get `limits.worker_stack_bytes` of stack, one
//! listener per role, and graceful shutdown on SIGINT/SIGTERM (listeners stop accepting,
//! requests in progress finish).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, Role};
use crate::limits::{WorkSlots, explain_too_large, limit_concurrency};
use crate::{AppState, Metrics};

/// Why the services could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A server failed while running.
    #[error("the {service} server failed: {source}")]
    Server {
        /// Which one.
        service: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// Building the backends (store, evaluator, orchestrator) failed.
    #[error("{0}")]
    Setup(String),
}

/// The routers one process serves.
pub struct Services {
    /// The orchestrator side (objects, calls, testers, metrics), unless the role is evaluator.
    pub orchestrator: Option<AppState>,
    /// The evaluator API router, unless the role is orchestrator.
    pub evaluator: Option<Router>,
}

/// Builds the runtime, then the services with `build` (inside the runtime, so backends may
/// spawn tasks), binds, prints one line per listener on stdout (`orchestrator API on
/// http://ADDR`, `evaluator API on http://ADDR`; tests start with port 0 and read them), and
/// serves until SIGINT or SIGTERM.
pub fn serve(
    config: Config,
    build: impl FnOnce(&Config, &std::sync::Arc<Metrics>) -> Result<Services, ServeError>,
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(config.limits.worker_stack_bytes)
        .thread_name("zeval-worker")
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(run(config, build))
}

async fn run(
    config: Config,
    build: impl FnOnce(&Config, &std::sync::Arc<Metrics>) -> Result<Services, ServeError>,
) -> Result<(), ServeError> {
    let metrics = std::sync::Arc::new(Metrics::default());
    let services = tokio::task::block_in_place(|| build(&config, &metrics))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing requests in progress");
        let _ = stop_tx.send(true);
    });
    let mut servers = Vec::new();
    if config.role != Role::Evaluator
        && let Some(state) = services.orchestrator
    {
        let listener = bind(config.listen).await?;
        announce("orchestrator API", &listener);
        let app =
            crate::orchestrator_router(state).layer(tower_http::trace::TraceLayer::new_for_http());
        servers.push(tokio::spawn(run_one(
            "orchestrator",
            listener,
            app,
            stop_rx.clone(),
        )));
    }
    if config.role != Role::Orchestrator
        && let Some(router) = services.evaluator
    {
        let listener = bind(config.evaluator_listen).await?;
        announce("evaluator API", &listener);
        let app = evaluator_app(router, &config, &metrics);
        servers.push(tokio::spawn(run_one(
            "evaluator",
            listener,
            app,
            stop_rx.clone(),
        )));
    }
    if servers.is_empty() {
        return Err(ServeError::Setup("nothing to serve for this role".into()));
    }
    for server in servers {
        server
            .await
            .map_err(|e| ServeError::Setup(format!("a server task failed: {e}")))??;
    }
    Ok(())
}

/// The evaluator router with this process's limits around it: body size (413 with the
/// limit), concurrency (503 with `Retry-After`), tracing.
pub fn evaluator_app(router: Router, config: &Config, metrics: &std::sync::Arc<Metrics>) -> Router {
    let limit = config.limits.evaluator_body_bytes;
    let counted = metrics.clone();
    let slots = WorkSlots::new(
        config.limits.max_concurrent_requests,
        config.limits.retry_after_seconds,
        std::sync::Arc::new(move || {
            counted.inc("zeval_requests_rejected_total", &[("reason", "busy")])
        }),
    );
    router
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(limit, explain_too_large))
        .layer(middleware::from_fn_with_state(slots, limit_concurrency))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

fn announce(what: &str, listener: &TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{what} on http://{addr}");
        let _ = out.flush();
        tracing::info!(%addr, "{what} listening");
    }
}

async fn run_one(
    service: &'static str,
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await
        .map_err(|source| ServeError::Server { service, source })
}

async fn wait_for_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
