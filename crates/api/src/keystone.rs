//! Validating tokens against a remote identity service (what keystonemiddleware
//! does for a service in its own process): the service logs in with its own
//! credentials from `[keystone_authtoken]`, then asks `GET /v3/auth/tokens` what
//! each caller's token means. Put a [`TokenCache`](crate::TokenCache) in front.

use std::sync::Mutex;
use std::time::Duration;

use common::{Config, ConfigError, Opt};
use serde_json::{json, Value};

use crate::auth::{AuthContext, TokenError, TokenValidator};

pub const AUTH_URL: Opt = Opt {
    section: "keystone_authtoken",
    name: "auth_url",
    default: "http://127.0.0.1:5000/v3",
    help: "The identity service this service validates tokens with.",
};
pub const USERNAME: Opt =
    Opt { section: "keystone_authtoken", name: "username", default: "", help: "This service's user." };
pub const PASSWORD: Opt =
    Opt { section: "keystone_authtoken", name: "password", default: "", help: "This service's password." };
pub const PROJECT_NAME: Opt = Opt {
    section: "keystone_authtoken",
    name: "project_name",
    default: "service",
    help: "The project this service logs in to.",
};
pub const USER_DOMAIN_NAME: Opt = Opt {
    section: "keystone_authtoken",
    name: "user_domain_name",
    default: "Default",
    help: "The domain of this service's user.",
};
pub const PROJECT_DOMAIN_NAME: Opt = Opt {
    section: "keystone_authtoken",
    name: "project_domain_name",
    default: "Default",
    help: "The domain of this service's project.",
};
pub const TOKEN_CACHE_TIME: Opt = Opt {
    section: "keystone_authtoken",
    name: "token_cache_time",
    default: "300",
    help: "Seconds a validated token is remembered; revocations take at most this long to be seen.",
};

pub const OPTS: &[Opt] =
    &[AUTH_URL, USERNAME, PASSWORD, PROJECT_NAME, USER_DOMAIN_NAME, PROJECT_DOMAIN_NAME, TOKEN_CACHE_TIME];

pub struct KeystoneValidator {
    client: reqwest::Client,
    auth_url: String,
    login: Value,
    service_token: Mutex<Option<String>>,
    pub cache_time: Duration,
}

impl KeystoneValidator {
    pub fn from_config(c: &Config) -> Result<KeystoneValidator, ConfigError> {
        let login = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": USERNAME.get::<String>(c)?,
                "password": PASSWORD.get::<String>(c)?,
                "domain": {"name": USER_DOMAIN_NAME.get::<String>(c)?},
            }}},
            "scope": {"project": {"name": PROJECT_NAME.get::<String>(c)?, "domain": {"name": PROJECT_DOMAIN_NAME.get::<String>(c)?}}},
        }});
        Ok(KeystoneValidator {
            client: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default(),
            auth_url: AUTH_URL.get::<String>(c)?.trim_end_matches('/').to_string(),
            login,
            service_token: Mutex::new(None),
            cache_time: Duration::from_secs(TOKEN_CACHE_TIME.get(c)?),
        })
    }

    async fn service_token(&self, fresh: bool) -> Result<String, TokenError> {
        if !fresh {
            if let Some(t) = self.service_token.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                return Ok(t);
            }
        }
        let resp = self
            .client
            .post(format!("{}/auth/tokens", self.auth_url))
            .json(&self.login)
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(e.to_string()))?;
        if resp.status().as_u16() != 201 {
            return Err(TokenError::Unavailable(format!("service login refused: {}", resp.status())));
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
            .ok_or_else(|| TokenError::Unavailable("no X-Subject-Token in the login answer".into()))?;
        *self.service_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
        Ok(token)
    }
}

/// An `AuthContext` from a Keystone token body.
pub fn context_from_token(t: &Value) -> AuthContext {
    let s = |v: &Value| v.as_str().map(String::from);
    let roles = t["roles"].as_array().cloned().unwrap_or_default();
    AuthContext {
        user_id: s(&t["user"]["id"]).unwrap_or_default(),
        user_name: s(&t["user"]["name"]).unwrap_or_default(),
        user_domain_id: s(&t["user"]["domain"]["id"]).unwrap_or_default(),
        user_domain_name: s(&t["user"]["domain"]["name"]).unwrap_or_default(),
        project_id: s(&t["project"]["id"]),
        project_name: s(&t["project"]["name"]),
        project_domain_id: s(&t["project"]["domain"]["id"]),
        project_domain_name: s(&t["project"]["domain"]["name"]),
        domain_id: s(&t["domain"]["id"]),
        domain_name: s(&t["domain"]["name"]),
        system_scope: t["system"]["all"].as_bool().unwrap_or(false),
        roles: roles.iter().filter_map(|r| s(&r["name"])).collect(),
        role_ids: roles.iter().filter_map(|r| s(&r["id"])).collect(),
        expires_at: t["expires_at"].as_str().and_then(common::time::parse_iso).unwrap_or(0),
        audit_ids: t["audit_ids"].as_array().map(|a| a.iter().filter_map(s).collect()).unwrap_or_default(),
        application_credential_id: s(&t["application_credential"]["id"]),
    }
}

#[async_trait::async_trait]
impl TokenValidator for KeystoneValidator {
    async fn validate(&self, token: &str) -> Result<AuthContext, TokenError> {
        for attempt in 0..2 {
            let service = self.service_token(attempt > 0).await?;
            let resp = self
                .client
                .get(format!("{}/auth/tokens?nocatalog", self.auth_url))
                .header("x-auth-token", &service)
                .header("x-subject-token", token)
                .send()
                .await
                .map_err(|e| TokenError::Unavailable(e.to_string()))?;
            match resp.status().as_u16() {
                200 => {
                    let body: Value = resp.json().await.map_err(|e| TokenError::Unavailable(e.to_string()))?;
                    return Ok(context_from_token(&body["token"]));
                }
                // Our own token expired or was revoked: log in again once.
                401 if attempt == 0 => continue,
                404 => return Err(TokenError::Invalid),
                s => return Err(TokenError::Unavailable(format!("token validation answered {s}"))),
            }
        }
        Err(TokenError::Unavailable("service credentials refused".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bodies_become_contexts() {
        let t = json!({"user": {"id": "u", "name": "n", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p", "name": "pn", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "admin"}], "expires_at": "2030-01-01T00:00:00.000000Z"});
        let c = context_from_token(&t);
        assert_eq!(c.project_id.as_deref(), Some("p"));
        assert!(c.is_admin());
        assert!(c.expires_at > 0);
    }
}
