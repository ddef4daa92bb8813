//! What the app holds between commands: the client for the configured bank and the one
//! session a window has. Behind a tokio mutex, so commands run one at a time, as the session
//! allows one request in flight.

use std::path::PathBuf;

use tokio::sync::{Mutex, MutexGuard};
use tresor_client::{BankSession, Client, ClientError, Settings};

use crate::error::{AppError, ErrorCode};
use crate::remember::RememberStore;

/// The app's state.
#[derive(Debug, Default)]
pub struct AppState {
    inner: Mutex<Inner>,
    /// Where the last login and drive are remembered.
    pub remember: RememberStore,
}

/// The guarded part.
#[derive(Debug, Default)]
pub struct Inner {
    client: Option<Client>,
    /// The session, once logged in.
    pub session: Option<BankSession>,
    /// The admin the session belongs to, on an admin's key session.
    pub admin: Option<tresor_core::api::admin::AdminView>,
}

impl AppState {
    /// Waits for the other command, if any, to finish.
    pub async fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().await
    }
}

impl Inner {
    /// The client for the configured bank, made on first use.
    pub fn client(&mut self) -> Result<Client, AppError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let client = Client::new(&settings()?)?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Forgets the client, after the settings change.
    pub fn reset_client(&mut self) {
        self.client = None;
    }

    /// The session, or the error that sends the user to the login screen.
    pub fn session(&mut self) -> Result<&mut BankSession, AppError> {
        self.session.as_mut().ok_or_else(AppError::not_logged_in)
    }

    /// A session call's result for the window; a session the bank or the idle timer has ended
    /// is dropped, so that the next command says so too.
    pub fn outcome<T>(&mut self, result: Result<T, ClientError>) -> Result<T, AppError> {
        let result = result.map_err(AppError::from);
        if let Err(e) = &result
            && e.code == ErrorCode::SessionExpired
        {
            self.session = None;
        }
        result
    }
}

/// The settings file: `TRESOR_CLIENT_CONFIG`, else the OS config folder.
pub fn settings_file() -> Option<PathBuf> {
    std::env::var_os("TRESOR_CLIENT_CONFIG").map(PathBuf::from)
}

/// The connection settings, as the CLI resolves them: the file, overridden by
/// `TRESOR_SERVER` and `TRESOR_BANK_CA` (how `scripts/run` points the app at the demo bank).
pub fn settings() -> Result<Settings, AppError> {
    let server = std::env::var("TRESOR_SERVER").ok();
    let bank_ca = std::env::var_os("TRESOR_BANK_CA").map(PathBuf::from);
    Ok(Settings::resolve(
        settings_file().as_deref(),
        server,
        bank_ca,
    )?)
}
