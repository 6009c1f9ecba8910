//! HTTP: the listeners, the connection caps, routing (axum), and the WebSocket upgrade.
//!
//! Each accepted TCP connection first takes its permits ([`Caps::admit`]); with none left it is
//! answered `503` and closed before a byte of its request is read. It is then served by hyper's
//! HTTP/1 connection with a header-read timeout (a slow-loris connection is closed) and a
//! watchdog for responses that must finish in time (downloads). The connection's permits sit
//! in a [`ConnCtx`] that every request on it can see; a WebSocket upgrade takes them into the
//! socket's task.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt as _;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::caps::{Caps, Permits, Refused};
use crate::media;
use crate::metrics::Metrics;
use crate::server::Shared;
use crate::socket::{self, Kind};

/// hyper's read buffer per connection at most (bounds a request head). hyper's minimum.
const MAX_HTTP_BUF: usize = 16 << 10;

/// What one TCP connection carries along its requests.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    /// The client.
    pub(crate) peer: SocketAddr,
    /// Its permits, until a WebSocket upgrade takes them.
    permits: Mutex<Option<Permits>>,
    /// A response in progress must be finished by then, or the connection is closed.
    deadline: watch::Sender<Option<Instant>>,
}

impl ConnCtx {
    /// The connection must be done with its current response by `at`.
    pub(crate) fn finish_by(&self, at: Instant) {
        self.deadline.send_replace(Some(at));
    }

    /// The response that had a deadline is done.
    pub(crate) fn finished(&self) {
        self.deadline.send_replace(None);
    }

    fn take_permits(&self) -> Option<Permits> {
        self.permits.lock().ok().and_then(|mut p| p.take())
    }
}

/// What a listener serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Routes {
    pub(crate) sockets: bool,
    pub(crate) media: bool,
    pub(crate) status: bool,
}

/// The application for one listener.
pub(crate) fn app(shared: &Arc<Shared>, routes: Routes) -> Router {
    let config = &shared.config;
    let mut app = Router::new();
    if routes.sockets {
        app = app
            .route("/ws", any(web_socket))
            .route("/phone", any(phone_socket));
        let logout =
            Router::new()
                .route("/logout", post(logout))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    config.request_timeout,
                ));
        app = app.merge(logout);
    }
    if routes.status {
        let status = Router::new()
            .route("/status", get(status))
            .route("/metrics", get(metrics))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                config.request_timeout,
            ));
        app = app.merge(status);
    }
    if routes.media {
        let max = usize::try_from(shared.core.limits.max_media_len).unwrap_or(usize::MAX);
        let media = Router::new()
            .route("/mms/{kind}/{token}", post(media::upload))
            .layer(RequestBodyLimitLayer::new(max))
            .route("/d/{id}", get(media::download))
            .route("/d/{id}/{cap}", get(media::download_path))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                config.media_timeout,
            ));
        app = app.merge(media);
    }
    app.fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(Arc::clone(shared))
}

/// The query of `POST /logout`: the browser token and the proof of the frame keys.
/// No `Debug`: both are secrets.
#[derive(serde::Deserialize)]
pub(crate) struct LogoutQuery {
    t: Option<String>,
    m: Option<String>,
}

/// `POST /logout?t=<browserToken>&m=<base64(HMAC-SHA256(mac_key, enc_key))>`: a web client
/// logs out without a socket (PROTOCOL.md §2.6). The core checks and unlinks; the pushes it
/// returns (close the device's connection, tell its account and contacts) go out once the
/// unlink is durable.
async fn logout(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(query): axum::extract::Query<LogoutQuery>,
) -> Response {
    let (Some(token), Some(proof)) = (query.t, query.m) else {
        return error(StatusCode::BAD_REQUEST, "t and m are required");
    };
    let (token, proof) = (
        zeroize::Zeroizing::new(token),
        zeroize::Zeroizing::new(proof),
    );
    let at = crate::metrics::now();
    let result = crate::store::write(&*shared.store, move |txn| {
        wa_server_core::logout_offline(txn, &token, &proof, at)
    })
    .await;
    match result {
        Ok(Ok(effects)) => {
            for (target, push) in effects {
                shared.board.deliver(&target, push);
            }
            let body = wa_wire::json::status(200, None).to_string();
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        Ok(Err(refusal)) => error(
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNAUTHORIZED),
            &refusal.reason,
        ),
        Err(e) => {
            tracing::error!(error = %e, "store failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "store failed")
        }
    }
}

/// A JSON error `{"status": N, "reason": "..."}` (the protocol's status reply).
pub(crate) fn error(status: StatusCode, reason: &str) -> Response {
    let body = wa_wire::json::status(status.as_u16(), Some(reason)).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Which caps a listener counts against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CapGroup {
    /// The public listeners (sockets, media).
    Public,
    /// The status listener.
    Status,
}

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    shared: Arc<Shared>,
    group: CapGroup,
) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let caps: &Caps = match group {
            CapGroup::Public => &shared.caps,
            CapGroup::Status => &shared.status_caps,
        };
        let permits = match caps.admit(peer.ip()) {
            Ok(permits) => permits,
            Err(why) => {
                refuse(&stream, why);
                continue;
            }
        };
        Metrics::inc(&shared.metrics.connections_total);
        let _ = stream.set_nodelay(true);
        let token = shared.tracker.token();
        tokio::spawn(serve_connection(
            stream,
            peer,
            permits,
            app.clone(),
            Arc::clone(&shared),
            token,
        ));
    }
}

/// Answers 503 without reading the request, and closes. Never waits: the answer fits in a
/// fresh socket's send buffer, and if it does not, the connection is closed all the same.
fn refuse(stream: &TcpStream, why: Refused) {
    let reason = match why {
        Refused::Full => "the server is at its connection limit",
        Refused::Address => "too many connections from your address",
        Refused::Unauthenticated => "too many connections are logging in",
    };
    tracing::debug!(?why, "connection refused");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 5\r\n\r\n{reason}\n",
        reason.len() + 1
    );
    let _ = stream.try_write(response.as_bytes());
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    permits: Permits,
    app: Router,
    shared: Arc<Shared>,
    token: tokio_util::task::task_tracker::TaskTrackerToken,
) {
    let (deadline, mut deadline_rx) = watch::channel(None);
    let ctx = Arc::new(ConnCtx {
        peer,
        permits: Mutex::new(Some(permits)),
        deadline,
    });
    let request_ctx = Arc::clone(&ctx);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(Arc::clone(&request_ctx));
        app.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout)
        .max_buf_size(MAX_HTTP_BUF);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let mut shutdown = shared.shutdown.clone();
    let mut draining = *shutdown.borrow();
    if draining {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended");
                }
                break;
            }
            () = overdue(&mut deadline_rx) => {
                Metrics::inc(&shared.metrics.responses_overdue);
                tracing::info!(%peer, "response not sent in time: connection closed");
                break;
            }
            _ = shutdown.changed(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    drop(ctx);
    drop(token);
}

/// Completes once a deadline set through [`ConnCtx::finish_by`] passes.
async fn overdue(rx: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let deadline = *rx.borrow_and_update();
        match deadline {
            Some(at) => tokio::select! {
                () = tokio::time::sleep_until(at) => return,
                changed = rx.changed() => if changed.is_err() { std::future::pending::<()>().await },
            },
            None => {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

async fn web_socket(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<Arc<ConnCtx>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    upgrade(shared, &ctx, &headers, ws, Kind::Web)
}

async fn phone_socket(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<Arc<ConnCtx>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    upgrade(shared, &ctx, &headers, ws, Kind::Phone)
}

/// Whether an upgrade's `Origin` is allowed: any when the list is empty; none given (not a
/// browser) is allowed.
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    if allowed.is_empty() {
        return true;
    }
    match headers.get(header::ORIGIN).map(HeaderValue::to_str) {
        None => true,
        Some(Ok(origin)) => allowed.iter().any(|a| a == origin),
        Some(Err(_)) => false,
    }
}

fn upgrade(
    shared: Arc<Shared>,
    ctx: &ConnCtx,
    headers: &HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    kind: Kind,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    if !origin_allowed(&shared.config.allowed_origins, headers) {
        tracing::info!(peer = %ctx.peer, "WebSocket from a foreign origin refused");
        return error(StatusCode::FORBIDDEN, "origin not allowed");
    }
    if *shared.shutdown.borrow() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let Some(permits) = ctx.take_permits() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no connection permit");
    };
    let token = shared.tracker.token();
    let limit = shared.core.limits.frame.max_frame_len;
    let config = &shared.config;
    ws.read_buffer_size(config.ws_read_buffer)
        .write_buffer_size(config.ws_write_buffer)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| socket::drive(shared, socket, kind, permits, token))
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.status().await.to_string();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.prometheus().await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let mut headers = HeaderMap::new();
        assert!(origin_allowed(&[], &headers));
        let allowed = vec!["https://web.example.org".to_owned()];
        assert!(
            origin_allowed(&allowed, &headers),
            "no Origin: not a browser"
        );
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!origin_allowed(&allowed, &headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://web.example.org"),
        );
        assert!(origin_allowed(&allowed, &headers));
    }
}
