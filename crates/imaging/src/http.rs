//! Serving HTTP routes with a read timeout: a connection that does not send
//! a complete request head within the timeout (half-open, stalled, or idle
//! between keep-alive requests) is closed. Request bodies have their own
//! timeout ([`crate::WebConfig::idle_timeout`] for STOW-RS).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Serve `app` on `listener` until the task is dropped, closing connections
/// that send no request head for `idle`. Handlers see the client's address
/// as `ConnectInfo<SocketAddr>`.
pub async fn serve(listener: TcpListener, app: Router, idle: Duration) -> std::io::Result<()> {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // out of file descriptors and the like: wait rather than spin
                tracing::warn!(error = %e, "cannot accept an HTTP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(ConnectInfo::<SocketAddr>(peer))),
        );
        tokio::spawn(async move {
            // HTTP/1 only: no version sniffing, which would read without a timeout
            let mut builder = Builder::new(TokioExecutor::new()).http1_only();
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(idle);
            if let Err(e) = builder
                .serve_connection(TokioIo::new(socket), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "HTTP connection closed");
            }
        });
    }
}
