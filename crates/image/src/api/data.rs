//! `/v2/images/{id}/file`: uploading and downloading image data. An upload
//! moves the image queued → saving → active; a failed one puts it back to queued
//! and leaves no data behind.

use std::sync::Arc;

use api::Auth;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use db::records::Record;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::images::{owned_image, visible_image};
use crate::error::{ImageError, Result};
use crate::{ImageService, IMAGE};

const CHUNK: usize = 64 * 1024;

/// Moves the image from `from` to `to` if it is still in `from`, under the
/// writer lock so two uploads cannot both start.
async fn transition(svc: &ImageService, id: &str, from: &str, to: &str, extra: &[(&str, Value)]) -> Result<Record> {
    let mut w = svc.db.begin_write().await?;
    let mut r = svc.db.find_record_in(w.conn(), &IMAGE, id).await?.ok_or_else(|| {
        ImageError::Gone(format!(
            "Image {id} could not be found after upload. The image may have been deleted during the upload."
        ))
    })?;
    let status = r.str("status").unwrap_or_default().to_string();
    if status != from {
        return Err(ImageError::Conflict(format!("Image status transition from {status} to {to} is not allowed")));
    }
    r.attrs.insert("status".into(), json!(to));
    for (k, v) in extra {
        r.attrs.insert(k.to_string(), v.clone());
    }
    r.touch();
    svc.db.update_record(w.conn(), &IMAGE, &r).await?;
    w.commit().await?;
    Ok(r)
}

/// The disk's virtual size: a qcow2 header records it; a raw disk is its size.
async fn virtual_size(svc: &ImageService, r: &Record, size: u64) -> Option<u64> {
    match r.str("disk_format") {
        Some("raw") => Some(size),
        Some("qcow2") => {
            let mut header = [0u8; 32];
            let mut f = tokio::fs::File::open(svc.files.path(&r.id)).await.ok()?;
            f.read_exact(&mut header).await.ok()?;
            (header[..4] == *b"QFI\xfb").then(|| u64::from_be_bytes(header[24..32].try_into().unwrap_or_default()))
        }
        _ => None,
    }
}

/// `PUT /v2/images/{id}/file` with `Content-Type: application/octet-stream`.
pub async fn upload(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !ctype.starts_with("application/octet-stream") {
        return Err(ImageError::UnsupportedMedia(format!(
            "Content-Type {ctype:?} is not supported for image data; use application/octet-stream"
        )));
    }
    owned_image(&svc, &auth, &id).await?;
    transition(&svc, &id, "queued", "saving", &[]).await?;
    let stored = match svc.files.write(&id, body.into_data_stream(), svc.config.size_cap).await {
        Ok(s) => s,
        Err(e) => {
            // Best effort: the image may have been deleted meanwhile.
            let _ = transition(&svc, &id, "saving", "queued", &[]).await;
            return Err(ImageError::from(e));
        }
    };
    let r = svc.db.find_record(&IMAGE, &id).await?;
    let vsize = match &r {
        Some(r) => virtual_size(&svc, r, stored.size).await,
        None => None,
    };
    let extra = [
        ("size", json!(stored.size)),
        ("virtual_size", json!(vsize)),
        ("checksum", json!(stored.md5)),
        ("os_hash_algo", json!("sha512")),
        ("os_hash_value", json!(stored.sha512)),
    ];
    if let Err(e) = transition(&svc, &id, "saving", "active", &extra).await {
        // Deleted during the upload: its data must not outlive it.
        svc.files.remove(&id).await.map_err(crate::files::StoreError::from).map_err(ImageError::from)?;
        return Err(e);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The byte range a `Range: bytes=…` header asks of `size` bytes, as
/// `(first, last)` inclusive: `None` when there is no usable header (a
/// malformed one is ignored, as HTTP says), an error when the range lies
/// past the end.
fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>> {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Some((first, last)) = spec.trim().strip_prefix("bytes=").and_then(|r| r.split_once('-')) else {
        return Ok(None);
    };
    let unsatisfiable =
        || ImageError::RangeNotSatisfiable(format!("Requested range {spec} cannot be satisfied by {size} bytes."));
    let (first, last) = match (first.trim(), last.trim()) {
        ("", "") => return Ok(None),
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return Err(unsatisfiable()),
            Ok(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            Err(_) => return Ok(None),
        },
        (a, b) => {
            let Ok(a) = a.parse::<u64>() else { return Ok(None) };
            let b = if b.is_empty() { Ok(size.saturating_sub(1)) } else { b.parse::<u64>() };
            let Ok(b) = b else { return Ok(None) };
            if b < a {
                return Ok(None);
            }
            (a, b.min(size.saturating_sub(1)))
        }
    };
    if size == 0 || first >= size {
        return Err(unsatisfiable());
    }
    Ok(Some((first, last)))
}

/// `GET /v2/images/{id}/file`: the data as it was uploaded, streamed; a
/// `Range` gets 206 and that part, or 416 when it lies past the end.
pub async fn download(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let r = visible_image(&svc, &auth, &id).await?;
    match r.str("status") {
        Some("deactivated") if !auth.is_admin() => {
            return Err(ImageError::Forbidden(
                "The requested image has been deactivated. Image data download is forbidden.".into(),
            ))
        }
        Some("active") | Some("deactivated") => {}
        // No data yet.
        _ => return Ok(StatusCode::NO_CONTENT.into_response()),
    }
    let mut file = match tokio::fs::File::open(svc.files.path(&id)).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImageError::NotFound(format!("Image {id} has no data in the store")))
        }
        Err(e) => return Err(ImageError::from(crate::files::StoreError::from(e))),
    };
    let size = match r.attrs.get("size").and_then(Value::as_u64) {
        Some(s) => s,
        None => file.metadata().await.map_err(crate::files::StoreError::from)?.len(),
    };
    let range = requested_range(&headers, size)?;
    let (first, length) = match range {
        Some((a, b)) => (a, b - a + 1),
        None => (0, size),
    };
    if first > 0 {
        file.seek(std::io::SeekFrom::Start(first)).await.map_err(crate::files::StoreError::from)?;
    }
    let stream = futures::stream::try_unfold((file, length), |(mut f, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; CHUNK.min(left as usize)];
        let n = f.read(&mut buf).await?;
        buf.truncate(n);
        Ok::<_, std::io::Error>((n > 0).then_some((axum::body::Bytes::from(buf), (f, left - n as u64))))
    });
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, length.into());
    if let Some((a, b)) = range {
        if let Ok(v) = header::HeaderValue::from_str(&format!("bytes {a}-{b}/{size}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        return Ok(resp);
    }
    if let Some(md5) = r.str("checksum").and_then(|c| header::HeaderValue::from_str(c).ok()) {
        h.insert("content-md5", md5);
    }
    Ok(resp)
}
