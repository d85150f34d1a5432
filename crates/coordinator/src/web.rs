//! The web console (`console` crate) on the coordinator's own HTTP listener,
//! `console_listen` in coordinator.toml: off unless configured.

use std::net::SocketAddr;
use std::sync::Arc;

use console::coordinator::{CoordinatorConsole, FederationSource};
use fed::plan_run::{PlanEvent, PlanState};
use futures::future::BoxFuture;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::{CoordinatorError, Shared};

struct Source(Arc<Shared>);

impl FederationSource for Source {
    fn state(&self) -> BoxFuture<'_, PlanState> {
        Box::pin(async move { self.0.run.lock().await.state().clone() })
    }

    fn events(&self) -> broadcast::Receiver<PlanEvent> {
        self.0.events.subscribe()
    }
}

/// Bind the console's listener and serve it; returns its address and task.
pub(crate) async fn start(
    shared: Arc<Shared>,
    settings: &console::ConsoleSettings,
) -> Result<(SocketAddr, JoinHandle<()>), CoordinatorError> {
    let bind = |source| CoordinatorError::Bind {
        address: settings.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(bind)?;
    let address = listener.local_addr().map_err(bind)?;
    let oidc = console::oidc_provider(settings)
        .await
        .map_err(|e| crate::CoordinatorError::Console(format!("OpenID Connect: {e}")))?;
    let (log_dir, policy) = {
        let ledger = shared.ledger.lock().await;
        (ledger.log_dir().to_path_buf(), ledger.policy().clone())
    };
    let router = console::coordinator::router(
        CoordinatorConsole {
            federation: shared.federation.clone(),
            log_dir,
            policy,
            source: Arc::new(Source(shared)),
            oidc,
        },
        settings,
    );
    tracing::info!(%address, "console listening");
    Ok((address, tokio::spawn(console::serve(listener, router))))
}
