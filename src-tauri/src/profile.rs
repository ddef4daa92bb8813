//! The user's profile (the address the bank writes to, the language of its mail, the notices
//! turned off) and the self-service password reset, as commands: thin adapters over
//! `tresor-client`.

use std::path::PathBuf;

use tauri::State;
use tresor_client::KeyHome;
use tresor_client::media::SystemMedia;
use tresor_core::api::profile::{Language, NoticeKind, Profile};
use tresor_core::secret::Password;

use crate::commands::{SessionView, login, remember};
use crate::error::AppError;
use crate::state::AppState;

type Result<T> = std::result::Result<T, AppError>;

/// "Forgot my password": the key on `drive`, opened here, signs a session on which the bank
/// is asked to mail a one-time code to the user's verified address. Where it went, masked.
#[tauri::command]
#[specta::specta]
pub async fn forgot_password(
    state: State<'_, AppState>,
    login_name: String,
    drive: String,
    key_password: String,
) -> Result<String> {
    let key_password = Password::new(key_password);
    let login = login(&login_name)?;
    let client = state.lock().await.client()?;
    let home = KeyHome::resolve(&SystemMedia, &login, &drive, client.pkcs11_module())?;
    Ok(client.forgot_password(&home, &key_password).await?)
}

/// Sets a new password with the mailed code, with the key on `drive`; logged in afterwards.
#[tauri::command]
#[specta::specta]
pub async fn reset_password(
    state: State<'_, AppState>,
    login_name: String,
    drive: String,
    key_password: String,
    code: String,
    new_password: String,
) -> Result<SessionView> {
    let (key_password, code, new) = (
        Password::new(key_password),
        Password::new(code),
        Password::new(new_password),
    );
    let login = login(&login_name)?;
    let mut inner = state.lock().await;
    inner.session = None;
    inner.admin = None;
    let client = inner.client()?;
    let home = KeyHome::resolve(&SystemMedia, &login, &drive, client.pkcs11_module())?;
    let session = client
        .reset_password(&home, &key_password, &code, &new)
        .await?;
    inner.session = Some(session);
    let view = SessionView::of_state(&mut inner)?;
    drop(inner);
    remember(&state, login.as_str(), Some(&PathBuf::from(drive))).await;
    Ok(view)
}

/// The user's profile.
#[tauri::command]
#[specta::specta]
pub async fn profile(state: State<'_, AppState>) -> Result<Profile> {
    let mut inner = state.lock().await;
    let result = inner.session()?.profile().await;
    inner.outcome(result)
}

/// Asks the bank to write to `email` from now on: a code goes there. Where, masked.
#[tauri::command]
#[specta::specta]
pub async fn set_email(state: State<'_, AppState>, email: String) -> Result<String> {
    let mut inner = state.lock().await;
    let result = inner.session()?.set_email(&email).await;
    inner.outcome(result)
}

/// Confirms the new address with the mailed code.
#[tauri::command]
#[specta::specta]
pub async fn confirm_email(state: State<'_, AppState>, code: String) -> Result<Profile> {
    let code = Password::new(code);
    let mut inner = state.lock().await;
    let result = inner.session()?.confirm_email(&code).await;
    inner.outcome(result)
}

/// Sets the language of the bank's mail (none: both) and the notices not wanted.
#[tauri::command]
#[specta::specta]
pub async fn set_preferences(
    state: State<'_, AppState>,
    language: Option<Language>,
    quiet: Vec<NoticeKind>,
) -> Result<Profile> {
    let mut inner = state.lock().await;
    let result = inner.session()?.set_preferences(language, quiet).await;
    inner.outcome(result)
}

/// The second step of a key login where the bank asks for one: the code it sent by SMS.
#[tauri::command]
#[specta::specta]
pub async fn confirm_login(state: State<'_, AppState>, code: String) -> Result<SessionView> {
    let code = Password::new(code);
    let mut inner = state.lock().await;
    let result = inner.session()?.confirm_login(&code).await;
    inner.outcome(result)?;
    // An admin's key opens the administration area, as at a login without the step.
    let session = inner.session()?;
    let admin_key = session.key().is_some_and(|k| {
        tresor_core::pki::certificate_kind(&k.certificate)
            == Some(tresor_core::pki::CertKind::Admin)
    });
    if admin_key {
        let admin = crate::admin::whoami(session).await?;
        inner.admin = Some(admin);
    }
    SessionView::of_state(&mut inner)
}
