//! The console proxy (Nova's novncproxy): a browser's websocket, carrying a
//! console token, becomes a TCP connection to that instance's display on its
//! compute host, bytes passed both ways untouched. A request without a
//! websocket gets the noVNC page itself, from `[vnc] novnc_web` when that
//! directory exists (Debian's `novnc` package puts it in /usr/share/novnc).

use std::collections::HashMap;
use std::path::{Component, PathBuf};

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::store::Store;

#[derive(Clone)]
struct Proxy {
    store: Store,
    web: Option<PathBuf>,
}

/// The proxy's routes: any path upgrades to a websocket given a token;
/// otherwise it is a file of the noVNC page.
pub fn router(store: Store, web: Option<PathBuf>) -> Router {
    Router::new().fallback(entry).with_state(Proxy { store, web })
}

async fn entry(
    State(p): State<Proxy>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(_) if !same_origin(&headers) => refuse(StatusCode::FORBIDDEN, "the websocket's Origin is not this proxy"),
        Ok(ws) => connect(p, q, ws).await,
        Err(_) => static_file(&p, uri.path()).await,
    }
}

/// Turns a websocket away as websockify does: no body, and the connection
/// closed, so a client waiting for frames sees the end at once.
fn refuse(status: StatusCode, why: &str) -> Response {
    tracing::warn!(%status, why, "console connection refused");
    (status, [(header::CONNECTION, "close")], "").into_response()
}

/// A browser says where the page that opens the websocket came from; like
/// Nova's proxy, only a page served from this same host and port may open
/// one, so another site cannot ride a user's console URL. Clients that are
/// not browsers send no Origin.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest).trim_end_matches('/');
    origin_host.eq_ignore_ascii_case(host)
}

async fn connect(p: Proxy, q: HashMap<String, String>, ws: WebSocketUpgrade) -> Response {
    let Some(token) = q.get("token") else {
        return refuse(StatusCode::UNAUTHORIZED, "a console token is required");
    };
    let target = match p.store.console_token(token).await {
        Ok(Some(t)) => t,
        Ok(None) => return refuse(StatusCode::UNAUTHORIZED, "the console token is invalid or has expired"),
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let display = match TcpStream::connect((target.host.as_str(), target.port)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(instance = %target.instance_uuid, error = %e, "the console's display did not answer");
            return (StatusCode::BAD_GATEWAY, "the instance's console is not reachable").into_response();
        }
    };
    tracing::info!(instance = %target.instance_uuid, "console connected");
    // noVNC asks for websockify's "binary" subprotocol.
    ws.protocols(["binary"]).on_upgrade(move |socket| pipe(socket, display))
}

/// Copies bytes both ways until either side closes.
async fn pipe(socket: WebSocket, display: TcpStream) {
    let (mut to_browser, mut from_browser) = socket.split();
    let (mut from_display, mut to_display) = display.into_split();
    let upstream = async {
        while let Some(Ok(m)) = from_browser.next().await {
            let data = match m {
                Message::Binary(b) => b,
                Message::Text(t) => Bytes::from(t.as_str().as_bytes().to_vec()),
                Message::Close(_) => break,
                _ => continue,
            };
            if to_display.write_all(&data).await.is_err() {
                break;
            }
        }
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from_display.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_browser.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_browser.send(Message::Close(None)).await;
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

async fn static_file(p: &Proxy, path: &str) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found").into_response();
    let Some(web) = &p.web else { return not_found() };
    let relative = PathBuf::from(path.trim_start_matches('/'));
    // Only plain names below the web root.
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return not_found();
    }
    let file = if relative.as_os_str().is_empty() { web.join("vnc_auto.html") } else { web.join(&relative) };
    let Ok(body) = tokio::fs::read(&file).await else { return not_found() };
    let kind = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript",
        Some("css") => "text/css",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
