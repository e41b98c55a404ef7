//! The compute service as a client of the others: a session as its own
//! service user (token kept until near expiry, endpoints from its catalog),
//! and the network and image calls it makes. Calls go either as the service
//! (binding ports, cleaning up) or with the user's own token (checking that a
//! user may see the network or image they named).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::error::{ComputeError, Result};

/// How the service finds and proves itself to the other services
/// (`[service_user]` in the configuration).
#[derive(Debug, Clone)]
pub struct ServiceUser {
    pub auth_url: String,
    pub username: String,
    pub password: String,
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    pub region: String,
}

struct Token {
    value: String,
    catalog: Value,
    renew_at: Instant,
}

pub struct ServiceSession {
    http: reqwest::Client,
    user: ServiceUser,
    token: Mutex<Option<Token>>,
}

fn upstream(what: &str, e: impl std::fmt::Display) -> ComputeError {
    ComputeError::Upstream(format!("{what}: {e}"))
}

/// A request that got no (whole) answer: refused, timed out, or cut off by
/// a service that died or restarted under it. It is unavailable for now,
/// and the step that asked runs again (whether or not the request did its
/// work: steps can run twice). A request we could not build, or an answer
/// that is not what it says, is a failure of its own.
fn unanswered(what: &str, e: reqwest::Error) -> ComputeError {
    if e.is_builder() || e.is_decode() {
        upstream(what, e)
    } else {
        ComputeError::Unavailable(format!("{what} is unreachable: {e}"))
    }
}

impl ServiceSession {
    pub fn new(user: ServiceUser) -> ServiceSession {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        ServiceSession { http, user, token: Mutex::new(None) }
    }

    async fn login(&self) -> Result<Token> {
        let u = &self.user;
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
            {"name": u.username, "domain": {"name": u.user_domain_name}, "password": u.password}}},
            "scope": {"project": {"name": u.project_name, "domain": {"name": u.project_domain_name}}}}});
        let url = format!("{}/auth/tokens", u.auth_url.trim_end_matches('/'));
        let resp = self.http.post(&url).json(&body).send().await.map_err(|e| unanswered("identity", e))?;
        if resp.status() != StatusCode::CREATED {
            let message = format!("service login as {} answered {}", u.username, resp.status());
            if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
                return Err(ComputeError::Unavailable(format!("identity: {message}")));
            }
            return Err(upstream("identity", message));
        }
        let value = resp.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body: Value = resp.json().await.map_err(|e| unanswered("identity", e))?;
        let expires = body["token"]["expires_at"].as_str().and_then(common::time::parse_iso).unwrap_or(0);
        let left = (expires - common::time::now_micros()).max(0) as u64;
        // Renew well before expiry.
        let renew_at = Instant::now() + Duration::from_micros(left / 2);
        Ok(Token { value, catalog: body["token"]["catalog"].clone(), renew_at })
    }

    /// The service's token and the URL of `service_type`'s public endpoint.
    async fn token_and_endpoint(&self, service_type: &str) -> Result<(String, String)> {
        let mut guard = self.token.lock().await;
        if guard.as_ref().is_none_or(|t| Instant::now() >= t.renew_at) {
            *guard = Some(self.login().await?);
        }
        let t = guard.as_ref().ok_or_else(|| upstream("identity", "no token"))?;
        let url = t
            .catalog
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["type"] == service_type)
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .find(|e| {
                e["interface"] == "public"
                    && (e["region"] == self.user.region.as_str() || e["region_id"] == self.user.region.as_str())
            })
            .and_then(|e| e["url"].as_str().map(|u| u.trim_end_matches('/').to_string()))
            .ok_or_else(|| upstream(service_type, "no endpoint in the catalog"))?;
        Ok((t.value.clone(), url))
    }

    /// Forgets the token (after a 401: it may have been revoked).
    async fn forget(&self) {
        *self.token.lock().await = None;
    }

    /// One call to another service, as the service or with `user_token`.
    pub async fn call(
        &self,
        service_type: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        user_token: Option<&str>,
    ) -> Result<(StatusCode, Value)> {
        self.call_typed(service_type, method, path, body.map(|b| (b, "application/json")), user_token).await
    }

    /// Like `call`, with a JSON body of another media type (Glance's JSON
    /// patch, say).
    pub async fn call_typed(
        &self,
        service_type: &str,
        method: Method,
        path: &str,
        body: Option<(&Value, &str)>,
        user_token: Option<&str>,
    ) -> Result<(StatusCode, Value)> {
        for attempt in 0..2 {
            let (token, base) = self.token_and_endpoint(service_type).await?;
            let mut req = self.http.request(method.clone(), format!("{base}{path}"));
            req = req.header("x-auth-token", user_token.unwrap_or(&token));
            if let Some((b, media_type)) = body {
                req = req.header(reqwest::header::CONTENT_TYPE, media_type).body(b.to_string());
            }
            let resp = req.send().await.map_err(|e| unanswered(service_type, e))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && user_token.is_none() && attempt == 0 {
                self.forget().await;
                continue;
            }
            let text = resp.text().await.map_err(|e| unanswered(service_type, e))?;
            let value =
                if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
            return Ok((status, value));
        }
        Err(upstream(service_type, "unauthorized"))
    }

    /// Raw bytes to another service (image data).
    pub async fn put_bytes(
        &self,
        service_type: &str,
        path: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<StatusCode> {
        let (token, base) = self.token_and_endpoint(service_type).await?;
        let resp = self
            .http
            .put(format!("{base}{path}"))
            .header("x-auth-token", token)
            .header("content-type", content_type)
            .body(data)
            .send()
            .await
            .map_err(|e| unanswered(service_type, e))?;
        Ok(resp.status())
    }

    /// A call that must succeed with `expect`; other answers become errors
    /// carrying the other service's message.
    pub async fn expect(
        &self,
        service_type: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        user_token: Option<&str>,
        expect: StatusCode,
    ) -> Result<Value> {
        let (status, value) = self.call(service_type, method.clone(), path, body, user_token).await?;
        if status == expect {
            return Ok(value);
        }
        Err(remote_error(service_type, status, &value))
    }
}

/// The other service's error, mapped to ours with its message.
pub fn remote_error(service_type: &str, status: StatusCode, body: &Value) -> ComputeError {
    let message = body
        .get("NeutronError")
        .and_then(|e| e.get("message"))
        .or_else(|| body.get("message"))
        .or_else(|| body.get("error").and_then(|e| e.get("message")))
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| body.to_string());
    match status.as_u16() {
        400 => ComputeError::BadRequest(message),
        403 => ComputeError::Forbidden(message),
        404 => ComputeError::NotFound(message),
        409 => ComputeError::Conflict(message),
        503 => ComputeError::Unavailable(format!("{service_type} answered {status}: {message}")),
        _ => ComputeError::Upstream(format!("{service_type} answered {status}: {message}")),
    }
}
