//! Faults as each OpenStack API writes them. A service builds a [`Fault`] from its own
//! error type at the HTTP edge; the service's [`FaultFormat`] decides the body, because
//! clients parse each API's own shape (Tempest reads `error.message` from Keystone,
//! `NeutronError.type` from Neutron, `itemNotFound.message` from Nova).

use serde_json::{json, Value};

/// An error as a client sees it: a status code, a human message, and for APIs that
/// name their errors (Neutron), the error's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    pub message: String,
    /// The error's name where the API carries one, e.g. `NetworkNotFound`.
    pub kind: Option<String>,
}

impl Fault {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Fault { status, message: message.into(), kind: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Fault::new(400, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Fault::new(401, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Fault::new(403, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Fault::new(404, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Fault::new(409, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Fault::new(500, message)
    }

    /// A dependency (the database, the message bus) is down; the client may retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Fault::new(503, message)
    }

    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// The reason phrase of the status code (Keystone's `title`).
    pub fn title(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            409 => "Conflict",
            410 => "Gone",
            413 => "Request Entity Too Large",
            415 => "Unsupported Media Type",
            416 => "Requested Range Not Satisfiable",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            _ if self.status >= 500 => "Internal Server Error",
            _ => "Error",
        }
    }
}

/// The fault body shape of one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultFormat {
    /// `{"error": {"code": 404, "title": "Not Found", "message": "..."}}`
    Keystone,
    /// `{"itemNotFound": {"code": 404, "message": "..."}}`
    Nova,
    /// `{"NeutronError": {"type": "NetworkNotFound", "message": "...", "detail": ""}}`
    Neutron,
    /// webob's JSON error: `{"code": "404 Not Found", "title": "Not Found", "message": "..."}`
    Glance,
}

impl FaultFormat {
    pub fn body(self, fault: &Fault) -> Value {
        match self {
            FaultFormat::Keystone => json!({
                "error": {"code": fault.status, "title": fault.title(), "message": fault.message}
            }),
            FaultFormat::Nova => {
                let key = match fault.status {
                    400 => "badRequest",
                    401 => "unauthorized",
                    403 => "forbidden",
                    404 => "itemNotFound",
                    405 => "badMethod",
                    406 => "notAcceptable",
                    409 => "conflictingRequest",
                    413 => "overLimit",
                    501 => "notImplemented",
                    503 => "serviceUnavailable",
                    _ => "computeFault",
                };
                json!({ key: {"code": fault.status, "message": fault.message} })
            }
            FaultFormat::Neutron => {
                let kind = fault.kind.clone().unwrap_or_else(|| {
                    match fault.status {
                        400 => "BadRequest",
                        401 => "NotAuthorized",
                        403 => "Forbidden",
                        404 => "NotFound",
                        405 => "HTTPMethodNotAllowed",
                        409 => "Conflict",
                        503 => "ServiceUnavailable",
                        _ => "InternalError",
                    }
                    .to_string()
                });
                json!({"NeutronError": {"type": kind, "message": fault.message, "detail": ""}})
            }
            FaultFormat::Glance => json!({
                "code": format!("{} {}", fault.status, fault.title()),
                "title": fault.title(),
                "message": fault.message,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_fault_has_code_title_message() {
        let body = FaultFormat::Keystone.body(&Fault::unauthorized("bad password"));
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["title"], "Unauthorized");
        assert_eq!(body["error"]["message"], "bad password");
    }

    #[test]
    fn nova_and_neutron_name_their_faults() {
        let f = Fault::not_found("no such thing");
        assert_eq!(FaultFormat::Nova.body(&f)["itemNotFound"]["code"], 404);
        let n = FaultFormat::Neutron.body(&f.with_kind("NetworkNotFound"));
        assert_eq!(n["NeutronError"]["type"], "NetworkNotFound");
    }
}
