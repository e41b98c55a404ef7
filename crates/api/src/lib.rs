//! HTTP plumbing every ferrostack API shares, so each service's handlers only say
//! what is particular to them:
//! - [`error`]: handler errors as OpenStack faults, in the service's own body format;
//! - [`request_id`]: `x-openstack-request-id` on every response and in every log line;
//! - [`auth`]: the token a request carries, validated once and cached;
//! - [`policy`]: who may do what, with the 403 OpenStack gives;
//! - [`body`]: JSON bodies decoded with the bad field named in the 400;
//! - [`microversion`]: `OpenStack-API-Version` negotiation;
//! - [`page`]: `limit` / `marker` paging and the `links` that go with it;
//! - [`catch_panic`]: a handler's panic answered as a 500 fault, not a dropped connection;
//! - [`server`]: binding, serving and graceful shutdown.

pub mod auth;
pub mod body;
pub mod catch_panic;
pub mod error;
pub mod keystone;
pub mod microversion;
pub mod page;
pub mod policy;
pub mod request_id;
pub mod server;
pub mod url;

pub use auth::{Auth, AuthContext, TokenCache, TokenValidator};
pub use body::{Fields, JsonBody};
pub use error::{ApiError, ApiResult};
pub use microversion::Microversion;
pub use url::BaseUrl;
