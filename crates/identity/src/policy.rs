//! Keystone's default policy as it behaves with scope enforcement off (what
//! Tempest and most clouds run): the `admin` role on any scope administers
//! identity; others may read themselves, their projects' and domains' records, and
//! manage their own credentials and application credentials.

use api::policy::enforce;
use api::{ApiResult, AuthContext};

/// Identity administration: admins only.
pub fn admin(ctx: &AuthContext, action: &str) -> ApiResult<()> {
    enforce(action, ctx.is_admin())
}

/// An admin, or the user the request is about.
pub fn admin_or_self(ctx: &AuthContext, action: &str, user_id: &str) -> ApiResult<()> {
    enforce(action, ctx.is_admin() || ctx.user_id == user_id)
}

/// An admin, or a token scoped to this project.
pub fn admin_or_project_scope(ctx: &AuthContext, action: &str, project_id: &str) -> ApiResult<()> {
    enforce(action, ctx.is_admin() || ctx.project_id.as_deref() == Some(project_id))
}

/// An admin, or a token scoped to this domain or to a project in it.
pub fn admin_or_in_domain(ctx: &AuthContext, action: &str, domain_id: &str) -> ApiResult<()> {
    enforce(
        action,
        ctx.is_admin()
            || ctx.domain_id.as_deref() == Some(domain_id)
            || ctx.project_domain_id.as_deref() == Some(domain_id),
    )
}

/// Reading a project: admins, tokens scoped to it, and tokens scoped to its domain.
pub fn enforce_project_read(ctx: &AuthContext, p: &crate::store::Project) -> ApiResult<()> {
    enforce(
        "identity:get_project",
        ctx.is_admin() || ctx.project_id.as_deref() == Some(&p.id) || ctx.domain_id.as_deref() == Some(&p.domain_id),
    )
}

/// Token validation and revocation: admins, services, or the token's own user.
pub fn token_subject(ctx: &AuthContext, action: &str, subject_user_id: &str) -> ApiResult<()> {
    enforce(action, ctx.is_admin() || ctx.has_role("service") || ctx.user_id == subject_user_id)
}

/// Anyone with a valid token.
pub fn authenticated(_: &AuthContext, _: &str) -> ApiResult<()> {
    Ok(())
}

/// An admin, or whoever `also` says may.
pub fn enforce_any(ctx: &AuthContext, action: &str, also: bool) -> ApiResult<()> {
    enforce(action, ctx.is_admin() || also)
}

/// Only the user themself (creating their own application credentials).
pub fn api_owner(ctx: &AuthContext, action: &str, user_id: &str) -> ApiResult<()> {
    enforce(action, ctx.user_id == user_id)
}
