//! `/v2/images/{id}/members`: sharing an image with other projects. The owner
//! adds and removes members; each member accepts or rejects the image for itself.

use std::collections::HashMap;
use std::sync::Arc;

use api::Auth;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use db::RowExt;
use serde_json::{json, Value};

use super::images::{owned_image, visible_image};
use crate::error::{ImageError, Result};
use crate::ImageService;

/// Glance's `image_member_quota` default.
const MEMBERS_MAX: i64 = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Pending,
    Accepted,
    Rejected,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Accepted => "accepted",
            MemberStatus::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<MemberStatus> {
        match s {
            "pending" => Some(MemberStatus::Pending),
            "accepted" => Some(MemberStatus::Accepted),
            "rejected" => Some(MemberStatus::Rejected),
            _ => None,
        }
    }
}

struct Member {
    image_id: String,
    member: String,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl Member {
    fn render(&self) -> Value {
        json!({
            "image_id": self.image_id,
            "member_id": self.member,
            "status": self.status,
            "created_at": common::time::iso_seconds(self.created_at),
            "updated_at": common::time::iso_seconds(self.updated_at),
            "schema": "/v2/schemas/member",
        })
    }
}

async fn members_of(svc: &ImageService, image_id: &str, only: Option<&str>) -> Result<Vec<Member>> {
    let rows = match only {
        Some(m) => {
            svc.db
                .q("SELECT * FROM image_member WHERE image_id = ? AND member = ?")
                .bind(image_id.to_string())
                .bind(m.to_string())
                .fetch_all(svc.db.pool())
                .await
        }
        None => {
            svc.db
                .q("SELECT * FROM image_member WHERE image_id = ? ORDER BY created_at")
                .bind(image_id.to_string())
                .fetch_all(svc.db.pool())
                .await
        }
    }
    .map_err(db::DbError::from)?;
    rows.iter()
        .map(|r| {
            Ok(Member {
                image_id: r.str("image_id")?,
                member: r.str("member")?,
                status: r.str("status")?,
                created_at: r.int("created_at")?,
                updated_at: r.int("updated_at")?,
            })
        })
        .collect::<Result<_, db::DbError>>()
        .map_err(ImageError::from)
}

/// The project's membership status on one image, if it is a member.
pub async fn status_of(svc: &ImageService, image_id: &str, project: &str) -> Result<Option<MemberStatus>> {
    Ok(members_of(svc, image_id, Some(project)).await?.first().and_then(|m| MemberStatus::parse(&m.status)))
}

/// Every image the project is a member of, with its status there.
pub async fn of_member(svc: &ImageService, project: &str) -> Result<HashMap<String, MemberStatus>> {
    let rows = svc
        .db
        .q("SELECT image_id, status FROM image_member WHERE member = ?")
        .bind(project.to_string())
        .fetch_all(svc.db.pool())
        .await
        .map_err(db::DbError::from)?;
    let mut out = HashMap::new();
    for r in rows {
        if let Some(s) = MemberStatus::parse(&r.str("status")?) {
            out.insert(r.str("image_id")?, s);
        }
    }
    Ok(out)
}

/// Removes an image's memberships, inside the transaction deleting the image.
pub async fn delete_all(svc: &ImageService, conn: &mut db::AnyConnection, image_id: &str) -> Result<()> {
    svc.db
        .q("DELETE FROM image_member WHERE image_id = ?")
        .bind(image_id.to_string())
        .execute(conn)
        .await
        .map_err(db::DbError::from)?;
    Ok(())
}

fn shared_only(r: &db::records::Record) -> Result<()> {
    match r.attrs.get("visibility").and_then(Value::as_str) {
        Some("shared") => Ok(()),
        v => Err(ImageError::Forbidden(format!(
            "Only shared images have members. Image visibility is {}.",
            v.unwrap_or("unknown")
        ))),
    }
}

/// `GET /v2/images/{id}/members`: the owner sees every member, a member only
/// itself.
pub async fn list(State(svc): State<Arc<ImageService>>, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>> {
    let r = visible_image(&svc, &auth, &id).await?;
    if r.attrs.get("visibility").and_then(Value::as_str) != Some("shared") {
        return Err(shared_only(&r).unwrap_err());
    }
    let only = if auth.is_admin() || auth.project_id.as_deref() == Some(r.project_id.as_str()) {
        None
    } else {
        auth.project_id.clone()
    };
    let members = members_of(&svc, &id, only.as_deref()).await?;
    Ok(Json(json!({
        "members": members.iter().map(Member::render).collect::<Vec<_>>(),
        "schema": "/v2/schemas/members",
    })))
}

/// `POST /v2/images/{id}/members` with `{"member": project_id}`.
pub async fn create(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body: Value = api::body::decode(&body)?;
    let member = body
        .get("member")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && m.len() <= 255)
        .ok_or_else(|| ImageError::BadRequest("Member to be added not specified".into()))?
        .to_string();
    let r = owned_image(&svc, &auth, &id).await?;
    shared_only(&r)?;
    let mut w = svc.db.begin_write().await?;
    let count = svc
        .db
        .q("SELECT COUNT(*) AS n FROM image_member WHERE image_id = ?")
        .bind(id.clone())
        .fetch_one(w.conn())
        .await
        .map_err(db::DbError::from)?
        .int("n")?;
    if count >= MEMBERS_MAX {
        return Err(ImageError::TooLarge(format!("Maximum number of members ({MEMBERS_MAX}) reached for image {id}")));
    }
    let now = common::time::now_micros();
    let inserted = svc
        .db
        .q("INSERT INTO image_member (image_id, member, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
        .bind(id.clone())
        .bind(member.clone())
        .bind("pending")
        .bind(now)
        .bind(now)
        .execute(w.conn())
        .await;
    match inserted {
        Ok(_) => {}
        Err(e) => {
            let e = db::DbError::from(e);
            return Err(if e.is_unique_violation() {
                ImageError::Conflict(format!("Member {member} already associated with image {id}"))
            } else {
                ImageError::from(e)
            });
        }
    }
    w.commit().await?;
    let m = Member { image_id: id, member, status: "pending".into(), created_at: now, updated_at: now };
    Ok(Json(m.render()))
}

/// `GET /v2/images/{id}/members/{member}`: for the owner, or the member itself.
pub async fn show(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path((id, member)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let r = visible_image(&svc, &auth, &id).await?;
    let owner = auth.is_admin() || auth.project_id.as_deref() == Some(r.project_id.as_str());
    if !owner && auth.project_id.as_deref() != Some(member.as_str()) {
        return Err(member_not_found(&id, &member));
    }
    match members_of(&svc, &id, Some(&member)).await?.first() {
        Some(m) => Ok(Json(m.render())),
        None => Err(member_not_found(&id, &member)),
    }
}

fn member_not_found(id: &str, member: &str) -> ImageError {
    ImageError::NotFound(format!("Member {member} not found for image {id}"))
}

/// `PUT /v2/images/{id}/members/{member}` with `{"status": ...}`: only the
/// member decides whether it accepts a shared image.
pub async fn update(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path((id, member)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body: Value = api::body::decode(&body)?;
    let status = body.get("status").and_then(Value::as_str).and_then(MemberStatus::parse).ok_or_else(|| {
        ImageError::BadRequest(format!("Invalid status: {}", body.get("status").unwrap_or(&Value::Null)))
    })?;
    let r = visible_image(&svc, &auth, &id).await?;
    let mut m = members_of(&svc, &id, Some(&member)).await?.pop().ok_or_else(|| member_not_found(&id, &member))?;
    if auth.project_id.as_deref() != Some(member.as_str()) {
        let owner = auth.is_admin() || auth.project_id.as_deref() == Some(r.project_id.as_str());
        return Err(if owner {
            ImageError::Forbidden("Only the member can change its membership status.".into())
        } else {
            member_not_found(&id, &member)
        });
    }
    m.status = status.as_str().into();
    m.updated_at = common::time::now_micros();
    let mut w = svc.db.begin_write().await?;
    svc.db
        .q("UPDATE image_member SET status = ?, updated_at = ? WHERE image_id = ? AND member = ?")
        .bind(m.status.clone())
        .bind(m.updated_at)
        .bind(id)
        .bind(member)
        .execute(w.conn())
        .await
        .map_err(db::DbError::from)?;
    w.commit().await?;
    Ok(Json(m.render()))
}

/// `DELETE /v2/images/{id}/members/{member}`: the owner stops sharing.
pub async fn delete(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path((id, member)): Path<(String, String)>,
) -> Result<StatusCode> {
    let r = visible_image(&svc, &auth, &id).await?;
    if !(auth.is_admin() || auth.project_id.as_deref() == Some(r.project_id.as_str())) {
        return Err(ImageError::Forbidden(format!("You are not permitted to remove members of image {id}.")));
    }
    shared_only(&r)?;
    let mut w = svc.db.begin_write().await?;
    let done = svc
        .db
        .q("DELETE FROM image_member WHERE image_id = ? AND member = ?")
        .bind(id.clone())
        .bind(member.clone())
        .execute(w.conn())
        .await
        .map_err(db::DbError::from)?;
    if done.rows_affected() == 0 {
        return Err(member_not_found(&id, &member));
    }
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
