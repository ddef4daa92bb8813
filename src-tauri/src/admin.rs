//! The administration area's commands: one admin action each, on the admin's key session, as
//! `tresor-admin` sends them. The bank checks the roles; the window shows only what the
//! admin's roles allow, from [`AdminView::roles`].
//!
//! The one-time secret an approval makes is the only secret these return, once, to the
//! approver; [`copy_secret`] puts it on the clipboard and takes it off again after a minute.

use std::time::Duration;

use serde::Serialize;
use tauri::{AppHandle, State};
use tauri_plugin_clipboard_manager::ClipboardExt as _;
use tresor_core::api::Reply;
use tresor_core::api::admin::{
    AdminAction, AdminView, ApprovalView, AuditCheck, AuditRecord, IssuedSecret, UserDetails,
    UserSummary,
};

use crate::error::{AppError, ErrorCode};
use crate::state::AppState;

type Result<T> = std::result::Result<T, AppError>;

/// How long a copied secret stays on the clipboard.
pub const CLIPBOARD_SECONDS: u64 = 60;

/// A one-time password, shown once to the admin who approved it.
#[derive(Debug, Serialize, specta::Type)]
pub struct SecretView {
    /// For whom.
    pub login: String,
    /// `initial`, `temporary` or `emergency`.
    pub kind: String,
    /// The secret.
    pub secret: String,
    /// Until when it may be used, Unix seconds.
    pub expires_at: u64,
}

impl From<IssuedSecret> for SecretView {
    fn from(s: IssuedSecret) -> Self {
        Self {
            login: s.login,
            kind: s.kind,
            secret: s.secret.expose().to_owned(),
            expires_at: s.expires_at,
        }
    }
}

/// An approved request, and its secret if it made one.
#[derive(Debug, Serialize, specta::Type)]
pub struct ApprovedView {
    /// The request, decided.
    pub request: ApprovalView,
    /// The one-time password it made.
    pub secret: Option<SecretView>,
}

fn unexpected(reply: &Reply) -> AppError {
    AppError::new(
        ErrorCode::Other,
        format!("the bank answered something unexpected: {reply:?}"),
    )
}

/// Sends one admin action on the session.
async fn call(state: &AppState, action: AdminAction) -> Result<Reply> {
    let mut inner = state.lock().await;
    let result = inner.session()?.admin(action).await;
    inner.outcome(result)
}

async fn done(state: &AppState, action: AdminAction) -> Result<()> {
    match call(state, action).await? {
        Reply::Done | Reply::Rights { .. } | Reply::Certificates { .. } => Ok(()),
        other => Err(unexpected(&other)),
    }
}

/// Users whose login or name contains `query`.
#[tauri::command]
#[specta::specta]
pub async fn admin_find_users(
    state: State<'_, AppState>,
    query: Option<String>,
) -> Result<Vec<UserSummary>> {
    match call(&state, AdminAction::FindUsers { query }).await? {
        Reply::Users { users } => Ok(users),
        other => Err(unexpected(&other)),
    }
}

/// One user's status, certificates and rights.
#[tauri::command]
#[specta::specta]
pub async fn admin_show_user(state: State<'_, AppState>, login: String) -> Result<UserDetails> {
    match call(&state, AdminAction::ShowUser { login }).await? {
        Reply::User(d) => Ok(d),
        other => Err(unexpected(&other)),
    }
}

/// Unlocks a user.
#[tauri::command]
#[specta::specta]
pub async fn admin_unlock(state: State<'_, AppState>, login: String) -> Result<()> {
    done(&state, AdminAction::UnlockUser { login }).await
}

/// Suspends every certificate of a user (on their call).
#[tauri::command]
#[specta::specta]
pub async fn admin_suspend(state: State<'_, AppState>, login: String) -> Result<()> {
    done(&state, AdminAction::SuspendUser { login }).await
}

/// Revokes a certificate.
#[tauri::command]
#[specta::specta]
pub async fn admin_revoke(state: State<'_, AppState>, serial: String) -> Result<()> {
    done(&state, AdminAction::RevokeCertificate { serial }).await
}

/// Activates a user's certificate from the fingerprint on its key letter.
#[tauri::command]
#[specta::specta]
pub async fn admin_activate(
    state: State<'_, AppState>,
    login: String,
    fingerprint: String,
) -> Result<()> {
    done(
        &state,
        AdminAction::ActivateCertificate { login, fingerprint },
    )
    .await
}

/// Asks for a temporary (or, with `emergency`, an emergency) password for a user: a
/// four-eyes request another admin approves.
#[tauri::command]
#[specta::specta]
pub async fn admin_ask_password(
    state: State<'_, AppState>,
    login: String,
    emergency: bool,
) -> Result<ApprovalView> {
    let action = if emergency {
        AdminAction::EmergencyPassword { login }
    } else {
        AdminAction::TempPassword { login }
    };
    match call(&state, action).await? {
        Reply::Requested(r) => Ok(r),
        other => Err(unexpected(&other)),
    }
}

/// The four-eyes requests, pending and lately decided.
#[tauri::command]
#[specta::specta]
pub async fn admin_requests(state: State<'_, AppState>) -> Result<Vec<ApprovalView>> {
    match call(&state, AdminAction::ListRequests {}).await? {
        Reply::Requests { requests } => Ok(requests),
        other => Err(unexpected(&other)),
    }
}

/// Approves a request; its secret, if it made one, is in the answer, once.
#[tauri::command]
#[specta::specta]
pub async fn admin_approve(state: State<'_, AppState>, id: u64) -> Result<ApprovedView> {
    match call(&state, AdminAction::Approve { id }).await? {
        Reply::Approved { request, secret } => Ok(ApprovedView {
            request,
            secret: secret.map(SecretView::from),
        }),
        other => Err(unexpected(&other)),
    }
}

/// Rejects (or withdraws) a request.
#[tauri::command]
#[specta::specta]
pub async fn admin_reject(state: State<'_, AppState>, id: u64) -> Result<()> {
    done(&state, AdminAction::Reject { id }).await
}

/// Audit records, newest first, by user, event and time (Unix seconds, inclusive).
#[tauri::command]
#[specta::specta]
pub async fn admin_audit(
    state: State<'_, AppState>,
    login: Option<String>,
    event: Option<String>,
    from: Option<u64>,
    until: Option<u64>,
) -> Result<Vec<AuditRecord>> {
    let blank = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let action = AdminAction::AuditList {
        login: blank(login),
        event: blank(event),
        from,
        until,
        limit: 500,
    };
    match call(&state, action).await? {
        Reply::AuditRecords { records } => Ok(records),
        other => Err(unexpected(&other)),
    }
}

/// Checks the audit chain and its anchor.
#[tauri::command]
#[specta::specta]
pub async fn admin_audit_verify(state: State<'_, AppState>) -> Result<AuditCheck> {
    match call(&state, AdminAction::AuditVerify {}).await? {
        Reply::AuditCheck(c) => Ok(c),
        other => Err(unexpected(&other)),
    }
}

/// Puts a one-time secret on the clipboard, and clears it after [`CLIPBOARD_SECONDS`]
/// unless something else has been copied since.
#[tauri::command]
#[specta::specta]
pub async fn copy_secret(app: AppHandle, secret: String) -> Result<()> {
    let secret = zeroize::Zeroizing::new(secret);
    app.clipboard()
        .write_text(secret.as_str())
        .map_err(|e| AppError::new(ErrorCode::Other, e.to_string()))?;
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(Duration::from_secs(CLIPBOARD_SECONDS)).await;
        let now = app
            .clipboard()
            .read_text()
            .ok()
            .map(zeroize::Zeroizing::new);
        if should_clear(now.as_deref().map(String::as_str), &secret) {
            let _ = app.clipboard().write_text("");
        }
    });
    Ok(())
}

/// Whether the clipboard still holds the secret we put there (then it is cleared), or
/// something the user copied since (then it is left alone).
pub fn should_clear(clipboard: Option<&str>, secret: &str) -> bool {
    clipboard == Some(secret)
}

/// The admin's own account and roles, for a session signed by an admin's key.
pub async fn whoami(session: &mut tresor_client::BankSession) -> Result<AdminView> {
    match session.admin(AdminAction::WhoAmI {}).await? {
        Reply::Admin(a) => Ok(a),
        other => Err(unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clipboard_is_cleared_only_if_it_still_holds_the_secret() {
        let cases = [
            (Some("s3cret"), true),
            (Some("something else"), false),
            (Some(""), false),
            (None, false),
        ];
        for (clipboard, want) in cases {
            assert_eq!(should_clear(clipboard, "s3cret"), want, "{clipboard:?}");
        }
    }
}
