//! The window's commands: thin adapters over `tresor-client`. Each takes what the form has,
//! wraps passwords at once in zeroizing [`Password`]s, calls one client function, and returns
//! a view the UI renders or an [`AppError`] with a code. No flow logic lives here.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;
use tresor_client::flows::{self, KeyCertificate, Step};
use tresor_client::media::{self, Drive, MediaSource, SystemMedia};
use tresor_client::reminder::{Reminder, renewal_reminder};
use tresor_client::session::SigningSummary;
use tresor_client::token::{self, TokenView};
use tresor_client::{BankSession, KeyHome, KeyStore, Settings, settings};
use tresor_core::api::admin::AdminView;
use tresor_core::api::{BankInfo, CertificateStatus, OrderView, Overview, Stage};
use tresor_core::login::Login;
use tresor_core::payment::{PaymentOrder, parse_amount};
use tresor_core::secret::Password;

use crate::error::{AppError, ErrorCode};
use crate::remember::Remembered;
use crate::state::{self, AppState};

type Result<T> = std::result::Result<T, AppError>;

/// The app locks itself after this long without input (the brief's 5 minutes), or sooner if
/// the bank's own idle timeout is shorter.
pub const IDLE_LOCK_SECONDS: u32 = 300;

/// What the window needs to show its first screen.
#[derive(Debug, Serialize, specta::Type)]
pub struct StartInfo {
    /// The app's version.
    pub version: String,
    /// The bank it talks to, if configured.
    pub settings: Option<SettingsView>,
    /// Why the settings are not usable, if they are not.
    pub settings_error: Option<AppError>,
    /// Idle lock, seconds.
    pub idle_lock_seconds: u32,
    /// The bank's name and helpdesk as it last told them (the settings file's cache), so
    /// that the number is on the login screen even when the bank cannot be reached.
    pub bank: Option<BankInfo>,
}

/// The connection settings.
#[derive(Debug, Serialize, specta::Type)]
pub struct SettingsView {
    /// The bank's address.
    pub server: String,
    /// The bank CA certificate file.
    pub bank_ca: String,
}

impl From<&Settings> for SettingsView {
    fn from(s: &Settings) -> Self {
        Self {
            server: s.server.clone(),
            bank_ca: s.bank_ca.display().to_string(),
        }
    }
}

/// A drive, and whether it has a key for the login asked about.
#[derive(Debug, Serialize, specta::Type)]
pub struct DriveView {
    /// The drive.
    pub drive: Drive,
    /// Whether it holds a key folder for the login.
    pub has_key: bool,
}

/// The logged-in session, as the window shows it.
#[derive(Debug, Serialize, specta::Type)]
pub struct SessionView {
    /// The login.
    pub login: String,
    /// The user's name.
    pub name: String,
    /// What the session may do.
    pub stage: Stage,
    /// Whether the session was signed by the key (signing is possible).
    pub key_session: bool,
    /// The drive (or token) the key was read from.
    pub drive: Option<String>,
    /// Whether the key is on a token (its PIN opens it, not a key password).
    pub on_token: bool,
    /// The key's certificate, as the bank sees it.
    pub certificate: Option<CertificateStatus>,
    /// The renewal reminder due now, if any.
    pub reminder: Option<Reminder>,
    /// Lock after this many idle seconds.
    pub idle_lock_seconds: u32,
    /// On a session signed by a bank admin's key: the admin and their roles (the window shows
    /// the administration area instead of the client's).
    pub admin: Option<AdminView>,
}

impl SessionView {
    /// The view of the state's session, with the admin it belongs to, if it does.
    pub(crate) fn of_state(inner: &mut crate::state::Inner) -> Result<Self> {
        let admin = inner.admin.clone();
        let mut view = Self::of(inner.session()?)?;
        view.admin = admin;
        Ok(view)
    }

    fn of(session: &BankSession) -> Result<Self> {
        let info = session.info().ok_or_else(AppError::not_logged_in)?;
        let certificate = info.certificate.clone();
        let reminder = certificate.as_ref().and_then(|c| {
            let not_after = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(c.not_after);
            renewal_reminder(not_after, SystemTime::now())
        });
        let bank_idle = u32::try_from(session.idle_timeout().as_secs()).unwrap_or(u32::MAX);
        Ok(Self {
            login: info.login.clone(),
            name: info.name.clone(),
            stage: info.stage,
            key_session: session.is_key_session(),
            drive: session.key().map(|k| k.home.describe()),
            on_token: session.key().is_some_and(|k| k.home.is_token()),
            certificate,
            reminder,
            idle_lock_seconds: IDLE_LOCK_SECONDS.min(bank_idle),
            admin: None,
        })
    }
}

/// A payment order as typed in the form: the amount as text, identifiers as typed.
#[derive(Debug, Deserialize, specta::Type)]
pub struct OrderDraft {
    /// Account debited.
    pub payer_iban: String,
    /// Payee's name.
    pub payee_name: String,
    /// Payee's tax code.
    pub payee_tax_code: String,
    /// Payee's IBAN.
    pub payee_iban: String,
    /// Amount, `1234.56` or `1234,56`.
    pub amount: String,
    /// Currency code.
    pub currency: String,
    /// Purpose of payment.
    pub purpose: String,
}

/// A TOTP enrollment: the secret's URI and its QR code, for an authenticator app.
#[derive(Debug, Serialize, specta::Type)]
pub struct TotpEnrollmentView {
    /// `otpauth://` URI (holds the secret: shown once, for manual entry).
    pub uri: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

/// A key letter saved for printing.
#[derive(Debug, Serialize, specta::Type)]
pub struct LetterView {
    /// Where the PDF was written.
    pub path: String,
    /// The key's fingerprint as printed on it (the bank types it back).
    pub fingerprint: String,
}

/// After logout.
#[derive(Debug, Serialize, specta::Type)]
pub struct LogoutView {
    /// The removable drive holding the key, still plugged in: remind the user to pull it out.
    pub remove_drive: Option<String>,
}

pub(crate) fn login(login: &str) -> Result<Login> {
    Ok(Login::new(login.trim())?)
}

fn report(progress: &Channel<Step>) -> impl Fn(Step) + Send + Sync + '_ {
    move |step| {
        let _ = progress.send(step);
    }
}

/// Blocking work off the async runtime (drive listing, the OS credential store).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| AppError::new(ErrorCode::Other, e.to_string()))
}

pub(crate) async fn remember(state: &AppState, login: &str, drive: Option<&std::path::Path>) {
    let store = state.remember.clone();
    let login = login.to_owned();
    let drive = drive.map(|d| d.display().to_string());
    let _ = blocking(move || {
        let mut what = store.load().unwrap_or_default();
        what.login = Some(login);
        if drive.is_some() {
            what.drive = drive;
        }
        if let Err(e) = store.save(&what) {
            eprintln!("tresor: the OS credential store is not available: {e}");
        }
    })
    .await;
}

/// The first screen's data: settings and the bank's cached helpdesk. Not the remembered
/// login: the OS credential store may first ask to be unlocked, and the login screen does not
/// wait for it ([`remembered`]).
#[tauri::command]
#[specta::specta]
pub async fn app_start() -> Result<StartInfo> {
    let (settings, settings_error) = match state::settings() {
        Ok(s) => (Some(SettingsView::from(&s)), None),
        Err(e) => (None, Some(e)),
    };
    let bank = settings.as_ref().and_then(|s| {
        settings::cached_bank_info(state::settings_file().as_deref(), &s.server).map(|c| c.info)
    });
    Ok(StartInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        settings,
        settings_error,
        idle_lock_seconds: IDLE_LOCK_SECONDS,
        bank,
    })
}

/// The last login and drive, from the OS credential store: asked after the login screen is
/// up, which fills them in when (and if) the store answers.
#[tauri::command]
#[specta::specta]
pub async fn remembered(state: State<'_, AppState>) -> Result<Remembered> {
    let store = state.remember.clone();
    blocking(move || store.load().unwrap_or_default()).await
}

/// Asks the bank for its name and helpdesk (an anonymous session: no key, no login) and
/// caches them in the settings file for when it cannot be reached.
#[tauri::command]
#[specta::specta]
pub async fn refresh_bank_info(state: State<'_, AppState>) -> Result<BankInfo> {
    // Not holding the state's lock: a login may go on meanwhile.
    let client = state.lock().await.client()?;
    let settings = state::settings()?;
    let info = client.bank_info().await?;
    let cached = info.clone();
    blocking(move || {
        let now = tresor_client::unix_seconds(std::time::SystemTime::now());
        if let Err(e) = settings::cache_bank_info(
            state::settings_file().as_deref(),
            &settings.server,
            &cached,
            now,
        ) {
            eprintln!("tresor: the bank's details were not cached: {e}");
        }
    })
    .await?;
    Ok(info)
}

/// Saves the bank's address and CA certificate, after checking that they load.
#[tauri::command]
#[specta::specta]
pub async fn save_settings(
    state: State<'_, AppState>,
    server: String,
    bank_ca: String,
) -> Result<SettingsView> {
    let settings = Settings {
        server: server.trim().to_owned(),
        bank_ca: PathBuf::from(bank_ca.trim()),
        pkcs11_module: settings::stored_pkcs11_module(state::settings_file().as_deref()),
    };
    tresor_client::Client::new(&settings)?;
    settings.save(state::settings_file().as_deref())?;
    let mut inner = state.lock().await;
    inner.reset_client();
    Ok(SettingsView::from(&settings))
}

/// Forgets the remembered login and drive.
#[tauri::command]
#[specta::specta]
pub async fn forget_remembered(state: State<'_, AppState>) -> Result<()> {
    let store = state.remember.clone();
    blocking(move || store.forget())
        .await?
        .map_err(|e| AppError::new(ErrorCode::Other, e.to_string()))
}

/// The login being typed, if it is one yet (the lists mark what holds its key).
fn typed_login(text: Option<&str>) -> Option<Login> {
    text.map(str::trim)
        .filter(|l| !l.is_empty())
        .and_then(|l| Login::new(l).ok())
}

/// The drives, removable first, each marked if it holds a key for `login`. The window calls
/// this every few seconds, so a USB drive appears and disappears as it is plugged and pulled.
#[tauri::command]
#[specta::specta]
pub async fn list_drives(for_login: Option<String>) -> Result<Vec<DriveView>> {
    let login = typed_login(for_login.as_deref());
    blocking(move || {
        let drives = SystemMedia
            .list()
            .map_err(|e| AppError::new(ErrorCode::Drive, e.to_string()))?;
        Ok(drives
            .into_iter()
            .map(|drive| {
                let has_key = login
                    .as_ref()
                    .is_some_and(|l| flows::has_key(&drive.mount_path, l));
                DriveView { drive, has_key }
            })
            .collect())
    })
    .await?
}

/// The PKCS#11 tokens plugged in (none where no module is installed), each marked if it
/// holds a key for `login`. Polled with the drives.
#[tauri::command]
#[specta::specta]
pub async fn list_tokens(for_login: Option<String>) -> Result<Vec<TokenView>> {
    let login = typed_login(for_login.as_deref());
    let module = settings::stored_pkcs11_module(state::settings_file().as_deref());
    blocking(move || {
        token::list_tokens(module.as_deref(), login.as_ref())
            .map_err(|e| tresor_client::ClientError::from(e).into())
    })
    .await?
}

/// Whether a key written to `path` gets the fixed-disk warning: the library decides, for the
/// app as for the CLI (a folder on a listed USB drive does not; anywhere else does).
#[tauri::command]
#[specta::specta]
pub async fn fixed_disk_warning(path: String) -> Result<bool> {
    let path = PathBuf::from(path.trim());
    if path.as_os_str().is_empty() {
        return Ok(false);
    }
    blocking(move || Ok(media::fixed_disk_warning(&SystemMedia, &path).is_some())).await?
}

/// The native folder chooser, for a key folder that is not a mounted drive.
#[tauri::command]
#[specta::specta]
pub async fn pick_folder(app: AppHandle) -> Result<Option<String>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().pick_folder(move |folder| {
        let _ = tx.send(folder);
    });
    let folder = rx
        .await
        .map_err(|e| AppError::new(ErrorCode::Other, e.to_string()))?;
    Ok(folder
        .and_then(|f| f.into_path().ok())
        .map(|p| p.display().to_string()))
}

/// Checks a new login password against the policy, here, before a wizard goes on.
#[tauri::command]
#[specta::specta]
pub fn check_new_password(for_login: String, password: String) -> Result<()> {
    let password = Password::new(password);
    password
        .check_new_login_password(&login(&for_login)?)
        .map_err(|e| tresor_client::ClientError::from(e).into())
}

/// Checks a new key password against the policy.
#[tauri::command]
#[specta::specta]
pub fn check_new_key_password(password: String) -> Result<()> {
    Password::new(password)
        .check_new_key_password()
        .map_err(|e| tresor_client::ClientError::from(e).into())
}

/// Login with the key on `drive`: its steps are reported on `progress`.
#[tauri::command]
#[specta::specta]
pub async fn login_with_key(
    state: State<'_, AppState>,
    login_name: String,
    password: String,
    drive: String,
    key_password: String,
    progress: Channel<Step>,
) -> Result<SessionView> {
    let (password, key_password) = (Password::new(password), Password::new(key_password));
    let login = login(&login_name)?;
    let drive = PathBuf::from(drive);
    let mut inner = state.lock().await;
    inner.session = None;
    let client = inner.client()?;
    let home = KeyHome::resolve(
        &SystemMedia,
        &login,
        &drive.to_string_lossy(),
        client.pkcs11_module(),
    )?;
    let mut session = client
        .login_with_key(&home, &password, &key_password, &report(&progress))
        .await?;
    // An admin's key (its certificate says so) opens the administration area; the bank
    // checks the roles on every request regardless.
    let admin_key = session.key().is_some_and(|k| {
        tresor_core::pki::certificate_kind(&k.certificate)
            == Some(tresor_core::pki::CertKind::Admin)
    });
    inner.admin = None;
    if admin_key && session.stage() == Some(Stage::Key) {
        inner.admin = Some(crate::admin::whoami(&mut session).await?);
    }
    inner.session = Some(session);
    let view = SessionView::of_state(&mut inner)?;
    drop(inner);
    remember(&state, login.as_str(), Some(&drive)).await;
    Ok(view)
}

/// Login with an OTP code instead of the key: view and prepare only.
#[tauri::command]
#[specta::specta]
pub async fn login_with_otp(
    state: State<'_, AppState>,
    login_name: String,
    password: String,
    otp: String,
) -> Result<SessionView> {
    let password = Password::new(password);
    let otp = zeroize::Zeroizing::new(otp);
    let login = login(&login_name)?;
    let mut inner = state.lock().await;
    inner.session = None;
    let client = inner.client()?;
    let session = client.login_with_otp(&login, &password, otp.trim()).await?;
    let view = SessionView::of(&session)?;
    inner.admin = None;
    inner.session = Some(session);
    drop(inner);
    remember(&state, login.as_str(), None).await;
    Ok(view)
}

/// The first-login wizard's last step: the initial password, the forced change, the first
/// key on `drive` and its certificate. Everything is checked here before the bank is asked.
#[tauri::command]
#[specta::specta]
#[allow(clippy::too_many_arguments)]
pub async fn first_login(
    state: State<'_, AppState>,
    login_name: String,
    initial_password: String,
    new_password: String,
    drive: String,
    key_password: String,
    progress: Channel<Step>,
) -> Result<KeyCertificate> {
    let initial = Password::new(initial_password);
    let new = Password::new(new_password);
    let key_password = Password::new(key_password);
    let login = login(&login_name)?;
    let drive = PathBuf::from(drive);
    let mut inner = state.lock().await;
    inner.session = None;
    let client = inner.client()?;
    let home = new_key_home(&client, &login, &drive)?;
    let done = client
        .first_login(&home, &initial, &new, &key_password, &report(&progress))
        .await?;
    drop(inner);
    remember(&state, login.as_str(), Some(&drive)).await;
    Ok(done)
}

/// Changes the login password on the session: the forced change after a temporary password,
/// or the user's own in Settings.
#[tauri::command]
#[specta::specta]
pub async fn change_password(
    state: State<'_, AppState>,
    current: String,
    new_password: String,
) -> Result<SessionView> {
    let (current, new) = (Password::new(current), Password::new(new_password));
    let mut inner = state.lock().await;
    let result = inner.session()?.change_password(&current, &new).await;
    inner.outcome(result)?;
    SessionView::of_state(&mut inner)
}

/// The accounts and rights.
#[tauri::command]
#[specta::specta]
pub async fn overview(state: State<'_, AppState>) -> Result<Overview> {
    let mut inner = state.lock().await;
    let result = inner.session()?.overview().await;
    inner.outcome(result)
}

/// The session and its key's certificate, with the renewal reminder due.
#[tauri::command]
#[specta::specta]
pub async fn session_info(state: State<'_, AppState>) -> Result<SessionView> {
    let mut inner = state.lock().await;
    SessionView::of_state(&mut inner)
}

/// Renews the key: a new key on the same drive, under the same key password (which the
/// library checks against the current key first).
#[tauri::command]
#[specta::specta]
pub async fn renew_key(
    state: State<'_, AppState>,
    key_password: String,
    progress: Channel<Step>,
) -> Result<KeyCertificate> {
    let key_password = Password::new(key_password);
    let mut inner = state.lock().await;
    let client = inner.client()?;
    let session = inner.session()?;
    let result = client
        .renew(session, &key_password, &report(&progress))
        .await;
    inner.outcome(result)
}

/// Certificate recovery with the bank's emergency password: a new key under a new key
/// password on `drive`, a new certificate; the bank revokes the old ones.
#[tauri::command]
#[specta::specta]
#[allow(clippy::too_many_arguments)]
pub async fn recover_key(
    state: State<'_, AppState>,
    login_name: String,
    password: String,
    emergency_password: String,
    drive: String,
    new_key_password: String,
    progress: Channel<Step>,
) -> Result<KeyCertificate> {
    let password = Password::new(password);
    let emergency = Password::new(emergency_password);
    let new_key_password = Password::new(new_key_password);
    let login = login(&login_name)?;
    let drive = PathBuf::from(drive);
    let mut inner = state.lock().await;
    inner.session = None;
    let client = inner.client()?;
    let home = new_key_home(&client, &login, &drive)?;
    let done = client
        .recover(
            &home,
            &password,
            &emergency,
            &new_key_password,
            &report(&progress),
        )
        .await?;
    drop(inner);
    remember(&state, login.as_str(), Some(&drive)).await;
    Ok(done)
}

/// Starts TOTP enrollment: the secret as a URI and a QR code.
#[tauri::command]
#[specta::specta]
pub async fn totp_enroll(state: State<'_, AppState>) -> Result<TotpEnrollmentView> {
    let mut inner = state.lock().await;
    let result = inner.session()?.totp_enroll().await;
    let enrollment = inner.outcome(result)?;
    Ok(TotpEnrollmentView {
        uri: enrollment.uri.to_string(),
        qr_svg: enrollment.qr_svg.to_string(),
    })
}

/// Confirms TOTP enrollment with a code from the authenticator app.
#[tauri::command]
#[specta::specta]
pub async fn totp_confirm(state: State<'_, AppState>, code: String) -> Result<()> {
    let mut inner = state.lock().await;
    let result = inner.session()?.totp_confirm(code.trim()).await;
    inner.outcome(result)
}

/// Orders, newest first, of one account or all.
#[tauri::command]
#[specta::specta]
pub async fn list_orders(
    state: State<'_, AppState>,
    account: Option<String>,
) -> Result<Vec<OrderView>> {
    let mut inner = state.lock().await;
    let result = inner.session()?.list_orders(account.as_deref()).await;
    inner.outcome(result)
}

/// Prepares an order: checked and put in canonical form here, then stored by the bank.
#[tauri::command]
#[specta::specta]
pub async fn prepare_order(state: State<'_, AppState>, draft: OrderDraft) -> Result<OrderView> {
    let order = PaymentOrder {
        payer_iban: draft.payer_iban,
        payee_name: draft.payee_name,
        payee_tax_code: draft.payee_tax_code,
        payee_iban: draft.payee_iban,
        amount: parse_amount(&draft.amount).map_err(tresor_client::ClientError::from)?,
        currency: draft.currency,
        purpose: draft.purpose,
    }
    .normalized()
    .map_err(tresor_client::ClientError::from)?;
    order.validate().map_err(tresor_client::ClientError::from)?;
    let mut inner = state.lock().await;
    let result = inner.session()?.prepare_order(&order).await;
    inner.outcome(result)
}

/// What signing order `id` would sign, computed here from its content: shown before signing.
#[tauri::command]
#[specta::specta]
pub async fn signing_summary(state: State<'_, AppState>, id: u64) -> Result<SigningSummary> {
    let mut inner = state.lock().await;
    let result = inner.session()?.signing_summary(id).await;
    inner.outcome(result)
}

/// Signs the order the user was shown: refused if it changed since.
#[tauri::command]
#[specta::specta]
pub async fn sign_order(state: State<'_, AppState>, shown: SigningSummary) -> Result<OrderView> {
    let mut inner = state.lock().await;
    let result = inner.session()?.sign_order(&shown).await;
    inner.outcome(result)
}

/// Sends a signed order.
#[tauri::command]
#[specta::specta]
pub async fn send_order(state: State<'_, AppState>, id: u64) -> Result<OrderView> {
    let mut inner = state.lock().await;
    let result = inner.session()?.send_order(id).await;
    inner.outcome(result)
}

/// Saves the key letter of the login's current certificate (on `drive`: a drive's path or a
/// token's medium) as a PDF in the documents folder (`TRESOR_LETTER_DIR` overrides it), to
/// print, sign, seal and bring to the bank, which activates the key from it.
#[tauri::command]
#[specta::specta]
pub async fn save_key_letter(
    state: State<'_, AppState>,
    login_name: String,
    drive: String,
) -> Result<LetterView> {
    let login = login(&login_name)?;
    let module = {
        let mut inner = state.lock().await;
        inner
            .client()?
            .pkcs11_module()
            .map(std::path::Path::to_path_buf)
    };
    blocking(move || {
        let home = KeyHome::resolve(&SystemMedia, &login, &drive, module.as_deref())?;
        let cert = home.current_certificate()?;
        let pdf = tresor_client::letter::key_letter_pdf(
            &cert,
            &tresor_client::letter::LetterDetails::default(),
            SystemTime::now(),
        )?;
        let fingerprint = tresor_core::pki::fingerprint_text(
            &tresor_core::pki::key_fingerprint(&cert)
                .map_err(|e| AppError::new(ErrorCode::Other, e.to_string()))?,
        );
        let serial = tresor_core::pki::serial_hex(cert.tbs_certificate().serial_number());
        let dir = std::env::var_os("TRESOR_LETTER_DIR")
            .map(PathBuf::from)
            .or_else(dirs::document_dir)
            .or_else(dirs::home_dir)
            .ok_or_else(|| AppError::new(ErrorCode::Other, "no documents folder to save to"))?;
        let path = dir.join(format!("tresor-key-letter-{login}-{serial}.pdf"));
        std::fs::write(&path, pdf)
            .map_err(|e| AppError::new(ErrorCode::Other, format!("{}: {e}", path.display())))?;
        Ok(LetterView {
            path: path.display().to_string(),
            fingerprint,
        })
    })
    .await?
}

/// Blocks the login's key at the bank (the user fears it stolen), with the password alone:
/// every certificate is suspended and every session ends, until a recovery.
#[tauri::command]
#[specta::specta]
pub async fn block_key(
    state: State<'_, AppState>,
    login_name: String,
    password: String,
) -> Result<()> {
    let password = Password::new(password);
    let login = login(&login_name)?;
    let mut inner = state.lock().await;
    let client = inner.client()?;
    client.block_key(&login, &password).await?;
    inner.session = None;
    inner.admin = None;
    Ok(())
}

/// Logs out (also the idle lock), and names the drive to pull out if it is still plugged in.
#[tauri::command]
#[specta::specta]
pub async fn logout(state: State<'_, AppState>) -> Result<LogoutView> {
    let session = {
        let mut inner = state.lock().await;
        inner.admin = None;
        inner.session.take()
    };
    let remove_drive = match session {
        Some(session) => session.logout(&SystemMedia).await.remove_drive,
        None => None,
    };
    Ok(LogoutView {
        remove_drive: remove_drive.map(|p| p.display().to_string()),
    })
}

/// Where a new key goes: the token the medium names, or exactly the drive or folder given
/// (never the first drive with a key, as a login may pick).
fn new_key_home(
    client: &tresor_client::Client,
    login: &Login,
    medium: &std::path::Path,
) -> Result<KeyHome> {
    let text = medium.to_string_lossy();
    if token::serial_of_medium(&text).is_some() {
        return Ok(KeyHome::resolve(
            &SystemMedia,
            login,
            &text,
            client.pkcs11_module(),
        )?);
    }
    Ok(KeyStore::new(medium, login).into())
}
