//! HTTP: the listeners, routing, and the WebSocket upgrade (`/ws` for web clients, `/phone`
//! for phones), the status pages (`/status` JSON, `/metrics` Prometheus) and the media
//! service (`/mms/...`, `/d/...`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::media::{self, HttpResponse, error, respond};
use crate::shared::{Metrics, Shared};

/// What a listener serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Routes {
    pub(crate) sockets: bool,
    pub(crate) media: bool,
}

#[derive(Debug, Clone, Copy)]
enum Peer {
    Web,
    Phone,
}

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, routes: Routes) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let conn_shared = Arc::clone(&shared);
        let mut conn_shutdown = shared.shutdown.clone();
        shared.spawn(async move {
            let service = service_fn(move |req| {
                let shared = Arc::clone(&conn_shared);
                async move { Ok::<_, Infallible>(route(shared, routes, peer, req).await) }
            });
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "HTTP connection failed");
                    }
                }
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

async fn route(
    shared: Arc<Shared>,
    routes: Routes,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> HttpResponse {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/ws") if routes.sockets => upgrade(shared, peer, req, Peer::Web),
        (&Method::GET, "/phone") if routes.sockets => upgrade(shared, peer, req, Peer::Phone),
        (&Method::GET, "/status") if routes.sockets => respond(
            StatusCode::OK,
            "application/json",
            shared.status().to_string(),
        ),
        (&Method::GET, "/metrics") if routes.sockets => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.prometheus(),
        ),
        (&Method::GET, "/") => respond(
            StatusCode::OK,
            "text/plain",
            "wa-server: /ws (web clients), /phone (phones), /status, /metrics, /mms, /d\n",
        ),
        (&Method::POST, p) if routes.media && p.starts_with("/mms/") => {
            let query = req.uri().query().map(str::to_owned);
            media::upload(&shared, p, query.as_deref(), req.into_body()).await
        }
        (&Method::GET, p) if routes.media && p.starts_with("/d/") => {
            media::download(&shared, p).await
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn header_has(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

fn upgrade(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
    kind: Peer,
) -> HttpResponse {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()));
    let (Some(accept), true, true) = (
        key,
        header_has(&req, header::UPGRADE, "websocket"),
        header_has(&req, header::CONNECTION, "upgrade"),
    ) else {
        return error(StatusCode::UPGRADE_REQUIRED, "a WebSocket endpoint");
    };
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return error(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only");
    }
    let open = Metrics::get(&shared.metrics.connections_open);
    if open >= shared.config.limits.max_connections as u64 || shared.shutting_down() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many connections");
    }
    Metrics::inc(&shared.metrics.connections_open);
    Metrics::inc(&shared.metrics.connections_total);
    let max = shared.config.limits.frame.max_frame_len;
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let task_shared = Arc::clone(&shared);
    shared.spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                match kind {
                    Peer::Web => crate::web::serve(Arc::clone(&task_shared), ws, peer).await,
                    Peer::Phone => {
                        crate::phone::server::serve(Arc::clone(&task_shared), ws, peer).await;
                    }
                }
            }
            Err(e) => tracing::debug!(%peer, error = %e, "upgrade failed"),
        }
        Metrics::sub(&task_shared.metrics.connections_open, 1);
    });
    let mut response = respond(StatusCode::SWITCHING_PROTOCOLS, "text/plain", "");
    response.headers_mut().remove(header::CONTENT_TYPE);
    let headers = response.headers_mut();
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("upgrade"),
    );
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    if let Ok(value) = header::HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}
