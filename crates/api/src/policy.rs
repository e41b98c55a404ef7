//! Authorization. Each service writes its rules as plain functions over the
//! caller's [`AuthContext`](crate::AuthContext) and the target; this module turns a
//! refusal into the 403 OpenStack gives and logs it.

use crate::error::{ApiError, ApiResult};

/// Allows `action` when `allowed`, else refuses it with OpenStack's message.
pub fn enforce(action: &str, allowed: bool) -> ApiResult<()> {
    if allowed {
        Ok(())
    } else {
        tracing::info!(action, "policy refused the request");
        Err(ApiError::forbidden(format!("You are not authorized to perform the requested action: {action}.")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_a_403_naming_the_action() {
        assert!(enforce("identity:get_user", true).is_ok());
        let e = enforce("identity:list_users", false).unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(e.0.message.contains("identity:list_users"));
    }
}
