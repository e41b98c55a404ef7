//! Role assignments: grants on projects, domains and the system (and their
//! OS-INHERIT forms), and `GET /v3/role_assignments` with `effective`,
//! `include_names` and `include_subtree`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use serde_json::{json, Value};

use super::{parse_bool_filter, render};
use crate::policy;
use crate::store::{Assignment, AssignmentFilter, Project, ProjectFilter, Role, Store, Target, UserFilter};
use crate::Identity;

/// What a grant path names.
struct Grant {
    actor_id: String,
    group: bool,
    target: Target,
    role_id: Option<String>,
    inherited: bool,
}

async fn check_grant_parts(store: &Store, g: &Grant) -> ApiResult<Option<Role>> {
    if g.group {
        store.get_group(&g.actor_id).await?;
    } else {
        store.get_user(&g.actor_id).await?;
    }
    let target_domain = match &g.target {
        Target::Project(p) => Some(store.get_project(p).await?.domain_id),
        Target::Domain(d) => Some(store.get_domain(d).await?.id),
        Target::System => None,
    };
    let Some(role_id) = &g.role_id else {
        return Ok(None);
    };
    let role = store.get_role(role_id).await?;
    if let Some(rd) = &role.domain_id {
        if target_domain.as_deref() != Some(rd.as_str()) {
            return Err(ApiError::forbidden(format!(
                "Domain specific roles are not supported in the V8 and earlier drivers, or the role {} belongs to domain {rd} which does not match the target.",
                role.id
            )));
        }
    }
    Ok(Some(role))
}

fn assignment_of(g: &Grant) -> Option<Assignment> {
    Some(Assignment {
        actor_id: g.actor_id.clone(),
        group: g.group,
        target: g.target.clone(),
        role_id: g.role_id.clone()?,
        inherited: g.inherited,
    })
}

async fn put_grant(id: &Identity, auth: &Auth, g: Grant) -> ApiResult<StatusCode> {
    policy::admin(auth, "identity:create_grant")?;
    check_grant_parts(&id.store, &g).await?;
    if let Some(a) = assignment_of(&g) {
        id.store.grant(&a).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn check_grant(id: &Identity, auth: &Auth, g: Grant) -> ApiResult<StatusCode> {
    policy::admin(auth, "identity:check_grant")?;
    check_grant_parts(&id.store, &g).await?;
    match assignment_of(&g) {
        Some(a) if id.store.has_assignment(&a).await? => Ok(StatusCode::NO_CONTENT),
        _ => Err(ApiError::not_found(format!(
            "Could not find role assignment with role: {}, actor: {}, target: {}.",
            g.role_id.unwrap_or_default(),
            g.actor_id,
            g.target.id()
        ))),
    }
}

async fn delete_grant(id: &Identity, auth: &Auth, g: Grant) -> ApiResult<StatusCode> {
    policy::admin(auth, "identity:revoke_grant")?;
    check_grant_parts(&id.store, &g).await?;
    let Some(a) = assignment_of(&g) else {
        return Err(ApiError::not_found("no role given"));
    };
    if !id.store.revoke(&a).await? {
        return Err(ApiError::not_found(format!(
            "Could not find role assignment with role: {}, actor: {}, target: {}.",
            a.role_id,
            a.actor_id,
            a.target.id()
        )));
    }
    // Tokens recompute their roles at validation; forgetting cached ones is
    // enough (the write itself clears the API token cache).
    Ok(StatusCode::NO_CONTENT)
}

async fn list_grants(id: &Identity, auth: &Auth, base: &BaseUrl, g: Grant, path: String) -> ApiResult<Json<Value>> {
    policy::admin_or_self(auth, "identity:list_grants", if g.group { "" } else { &g.actor_id })?;
    check_grant_parts(&id.store, &g).await?;
    let found = id
        .store
        .list_assignments(&AssignmentFilter {
            actor_ids: Some(vec![g.actor_id.clone()]),
            target_ids: Some(vec![g.target.id().to_string()]),
            inherited: Some(g.inherited),
            ..Default::default()
        })
        .await?;
    let mut items = Vec::new();
    for a in found.iter().filter(|a| a.target == g.target && a.group == g.group) {
        if let Ok(r) = id.store.get_role(&a.role_id).await {
            items.push(render::role(base, &r));
        }
    }
    Ok(Json(render::collection(base, "roles", &path, items)))
}

/// What a grant path is on: the `ON` parameter of the grant handlers.
pub const PROJECT: u8 = 0;
pub const DOMAIN: u8 = 1;
pub const SYSTEM: u8 = 2;

/// The grant a path names. Its parameters are, in order, the target (none for
/// the system), the actor and, when `with_role`, the role.
fn grant_of<const ON: u8, const GROUP: bool, const INHERITED: bool>(
    mut params: Vec<String>,
    with_role: bool,
) -> ApiResult<Grant> {
    let role_id = if with_role { params.pop() } else { None };
    let missing = || ApiError::not_found("The resource could not be found.");
    let actor_id = params.pop().ok_or_else(missing)?;
    let target = match ON {
        PROJECT => Target::Project(params.pop().ok_or_else(missing)?),
        DOMAIN => Target::Domain(params.pop().ok_or_else(missing)?),
        _ => Target::System,
    };
    Ok(Grant { actor_id, group: GROUP, target, role_id, inherited: INHERITED })
}

/// `PUT …/roles/{role}`: grants the role.
pub async fn put<const ON: u8, const GROUP: bool, const INHERITED: bool>(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(params): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    put_grant(&id, &auth, grant_of::<ON, GROUP, INHERITED>(params, true)?).await
}

/// `HEAD` (or `GET`) `…/roles/{role}`: 204 when granted, 404 when not.
pub async fn check<const ON: u8, const GROUP: bool, const INHERITED: bool>(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(params): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    check_grant(&id, &auth, grant_of::<ON, GROUP, INHERITED>(params, true)?).await
}

/// `DELETE …/roles/{role}`: revokes the role.
pub async fn delete<const ON: u8, const GROUP: bool, const INHERITED: bool>(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(params): Path<Vec<String>>,
) -> ApiResult<StatusCode> {
    delete_grant(&id, &auth, grant_of::<ON, GROUP, INHERITED>(params, true)?).await
}

/// `GET …/roles`: the roles granted directly (not through groups or inheritance).
pub async fn list_granted<const ON: u8, const GROUP: bool, const INHERITED: bool>(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    uri: Uri,
    Path(params): Path<Vec<String>>,
) -> ApiResult<Json<Value>> {
    list_grants(&id, &auth, &base, grant_of::<ON, GROUP, INHERITED>(params, false)?, uri.path().to_string()).await
}

/// One row of `GET /v3/role_assignments`, before rendering.
#[derive(Debug, Clone)]
struct Row {
    role_id: String,
    actor_id: String,
    group: bool,
    scope: Target,
    /// Shown with `OS-INHERIT:inherited_to` (only when not expanded).
    inherited: bool,
    assignment_link: String,
    membership_link: Option<String>,
    prior_role_link: Option<String>,
}

fn assignment_link(a: &Assignment) -> String {
    let actor = if a.group { "groups" } else { "users" };
    match (&a.target, a.inherited) {
        (Target::System, _) => format!("/v3/system/{actor}/{}/roles/{}", a.actor_id, a.role_id),
        (Target::Project(p), false) => format!("/v3/projects/{p}/{actor}/{}/roles/{}", a.actor_id, a.role_id),
        (Target::Domain(d), false) => {
            format!("/v3/domains/{d}/{actor}/{}/roles/{}", a.actor_id, a.role_id)
        }
        (Target::Project(p), true) => {
            format!("/v3/OS-INHERIT/projects/{p}/{actor}/{}/roles/{}/inherited_to_projects", a.actor_id, a.role_id)
        }
        (Target::Domain(d), true) => {
            format!("/v3/OS-INHERIT/domains/{d}/{actor}/{}/roles/{}/inherited_to_projects", a.actor_id, a.role_id)
        }
    }
}

/// `GET /v3/role_assignments`
pub async fn list(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let user_filter = q.get("user.id").cloned();
    let own = user_filter.as_deref() == Some(auth.user_id.as_str());
    policy::enforce_any(&auth, "identity:list_role_assignments", own)?;

    let effective = q.contains_key("effective") && parse_bool_filter(&q, "effective")?.unwrap_or(true);
    let include_names = parse_bool_filter(&q, "include_names")?.unwrap_or(false);
    let include_subtree = parse_bool_filter(&q, "include_subtree")?.unwrap_or(false);
    let group_filter = q.get("group.id").cloned();
    let role_filter = q.get("role.id").cloned();
    let project_filter = q.get("scope.project.id").cloned();
    let domain_filter = q.get("scope.domain.id").cloned();
    let system_filter = q.get("scope.system").cloned();
    let inherited_filter = q.get("scope.OS-INHERIT:inherited_to").cloned();
    if effective && group_filter.is_some() {
        return Err(ApiError::bad_request("Combining effective and group filter will always result in an empty list."));
    }
    if user_filter.is_some() && group_filter.is_some() {
        return Err(ApiError::bad_request("Specify a user or group, not both"));
    }
    if [project_filter.is_some(), domain_filter.is_some(), system_filter.is_some()].iter().filter(|x| **x).count() > 1 {
        return Err(ApiError::bad_request("Specify one of domain, project or system"));
    }
    if include_subtree && project_filter.is_none() {
        return Err(ApiError::bad_request("scope.project.id must be specified if include_subtree is also specified"));
    }

    let store = &id.store;
    let all = store.list_assignments(&AssignmentFilter::default()).await?;
    let mut rows: Vec<Row> = all
        .iter()
        .map(|a| Row {
            role_id: a.role_id.clone(),
            actor_id: a.actor_id.clone(),
            group: a.group,
            scope: a.target.clone(),
            inherited: a.inherited,
            assignment_link: assignment_link(a),
            membership_link: None,
            prior_role_link: None,
        })
        .collect();

    let roles = store.list_roles().await?;
    if effective {
        rows = expand_effective(store, rows).await?;
        // Domain-specific roles only stand for the global roles they imply.
        rows.retain(|r| roles.iter().any(|x| x.id == r.role_id && x.domain_id.is_none()));
    }

    let projects = store.list_projects(&ProjectFilter::default()).await?;
    let subtree: Option<BTreeSet<String>> = match (&project_filter, include_subtree) {
        (Some(p), true) => {
            let mut s: BTreeSet<String> = store.project_descendants(p).await?.into_iter().map(|x| x.id).collect();
            s.insert(p.clone());
            Some(s)
        }
        _ => None,
    };
    rows.retain(|r| {
        user_filter.as_ref().is_none_or(|u| !r.group && &r.actor_id == u)
            && group_filter.as_ref().is_none_or(|g| r.group && &r.actor_id == g)
            && role_filter.as_ref().is_none_or(|x| &r.role_id == x)
            && match (&project_filter, &subtree) {
                (_, Some(set)) => matches!(&r.scope, Target::Project(p) if set.contains(p)),
                (Some(pf), None) => matches!(&r.scope, Target::Project(p) if p == pf),
                (None, _) => true,
            }
            && domain_filter.as_ref().is_none_or(|d| matches!(&r.scope, Target::Domain(x) if x == d))
            && system_filter.as_ref().is_none_or(|_| r.scope == Target::System)
            && inherited_filter.as_ref().is_none_or(|_| r.inherited)
    });

    let names = if include_names { Some(Names::load(store, &projects).await?) } else { None };
    let items: Vec<Value> = rows.iter().map(|r| render_row(&base, r, &roles, names.as_ref())).collect();
    Ok(Json(json!({
        "role_assignments": items,
        "links": {"self": base.join("/v3/role_assignments"), "previous": null, "next": null},
    })))
}

/// Effective assignments: inherited ones land on the projects that inherit
/// them, group ones on the group's members, and every role brings the roles it
/// implies.
async fn expand_effective(store: &Store, rows: Vec<Row>) -> ApiResult<Vec<Row>> {
    let projects = store.list_projects(&ProjectFilter { is_domain: Some(false), ..Default::default() }).await?;
    let mut placed = Vec::new();
    for r in rows {
        if !r.inherited {
            placed.push(r);
            continue;
        }
        let targets: Vec<String> = match &r.scope {
            Target::Domain(d) => projects.iter().filter(|p| &p.domain_id == d).map(|p| p.id.clone()).collect(),
            Target::Project(p) => store.project_descendants(p).await?.into_iter().map(|p| p.id).collect(),
            Target::System => vec![],
        };
        for t in targets {
            placed.push(Row { scope: Target::Project(t), inherited: false, ..r.clone() });
        }
    }
    let mut by_user = Vec::new();
    for r in placed {
        if !r.group {
            by_user.push(r);
            continue;
        }
        for user_id in store.user_ids_in_group(&r.actor_id).await? {
            by_user.push(Row {
                membership_link: Some(format!("/v3/groups/{}/users/{user_id}", r.actor_id)),
                actor_id: user_id,
                group: false,
                ..r.clone()
            });
        }
    }
    let implications = store.list_implied_roles().await?;
    let mut out = Vec::new();
    for r in by_user {
        // Walk the implications from this role, each implied role once.
        let mut seen = BTreeSet::from([r.role_id.clone()]);
        let mut frontier = vec![r.role_id.clone()];
        while let Some(prior) = frontier.pop() {
            for (_, implied) in implications.iter().filter(|(p, _)| *p == prior) {
                if seen.insert(implied.clone()) {
                    frontier.push(implied.clone());
                    out.push(Row {
                        role_id: implied.clone(),
                        prior_role_link: Some(format!("/v3/roles/{prior}/implies/{implied}")),
                        ..r.clone()
                    });
                }
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// Names for `include_names`, loaded once per listing.
struct Names {
    users: HashMap<String, (String, String)>,
    groups: HashMap<String, (String, String)>,
    projects: HashMap<String, (String, String, bool)>,
}

impl Names {
    async fn load(store: &Store, projects: &[Project]) -> ApiResult<Names> {
        let users = store
            .list_users(&UserFilter::default())
            .await?
            .into_iter()
            .map(|u| (u.id, (u.name, u.domain_id)))
            .collect();
        let groups = store.list_groups(None, None).await?.into_iter().map(|g| (g.id, (g.name, g.domain_id))).collect();
        let projects =
            projects.iter().map(|p| (p.id.clone(), (p.name.clone(), p.domain_id.clone(), p.is_domain))).collect();
        Ok(Names { users, groups, projects })
    }

    fn domain(&self, id: &str) -> Value {
        let name = self.projects.get(id).map(|(n, _, _)| n.clone()).unwrap_or_default();
        json!({"id": id, "name": name})
    }
}

fn render_row(base: &BaseUrl, r: &Row, roles: &[Role], names: Option<&Names>) -> Value {
    let mut role = json!({"id": r.role_id});
    let mut actor = json!({"id": r.actor_id});
    let mut scope = match &r.scope {
        Target::Project(p) => json!({"project": {"id": p}}),
        Target::Domain(d) => json!({"domain": {"id": d}}),
        Target::System => json!({"system": {"all": true}}),
    };
    if let Some(n) = names {
        if let Some(rl) = roles.iter().find(|x| x.id == r.role_id) {
            role["name"] = json!(rl.name);
            if let Some(d) = &rl.domain_id {
                role["domain"] = n.domain(d);
            }
        }
        let found = if r.group { n.groups.get(&r.actor_id) } else { n.users.get(&r.actor_id) };
        if let Some((name, domain_id)) = found {
            actor["name"] = json!(name);
            actor["domain"] = n.domain(domain_id);
        }
        match &r.scope {
            Target::Project(p) => {
                if let Some((name, domain_id, _)) = n.projects.get(p) {
                    scope["project"]["name"] = json!(name);
                    scope["project"]["domain"] = n.domain(domain_id);
                }
            }
            Target::Domain(d) => {
                if let Some((name, _, _)) = n.projects.get(d) {
                    scope["domain"]["name"] = json!(name);
                }
            }
            Target::System => {}
        }
    }
    if r.inherited {
        scope["OS-INHERIT:inherited_to"] = json!("projects");
    }
    let mut links = json!({"assignment": base.join(&r.assignment_link)});
    if let Some(m) = &r.membership_link {
        links["membership"] = json!(base.join(m));
    }
    if let Some(p) = &r.prior_role_link {
        links["prior_role"] = json!(base.join(p));
    }
    let actor_key = if r.group { "group" } else { "user" };
    json!({"role": role, actor_key: actor, "scope": scope, "links": links})
}
