//! The user's flows, end to end: first login, login with the key or an OTP code, renewal,
//! recovery. Each checks what it can here first (policies, the drive, the key, the
//! certificate's dates) so that the user hears the precise cause, and orders its steps so
//! that a failure at any point leaves a key that logs in.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tresor_core::api::{BankInfo, MAX_BANK_FIELD, Stage};
use tresor_core::channel::client::ClientAuthentication;
use tresor_core::login::Login;
use tresor_core::pki::{self, CertError, NoRevocationList};
use tresor_core::secret::Password;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::Encode as _;

use crate::connection::BankConnection;
use crate::error::ClientError;
use crate::key_home::{KeyHome, Pending};
use crate::keystore::{KeyStore, TRESOR_DIR};
use crate::media::{Drive, MediaSource};
use crate::session::{BankSession, SessionKey};
use crate::settings::Settings;

/// A step of a long flow, reported as it starts, so that a user interface can show where a
/// flow is (unlocking a key or generating one takes a noticeable time by design).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Step {
    /// Checking that the drive is there and writable.
    CheckingDrive,
    /// Deriving the key file's key from the key password and decrypting the key.
    UnlockingKey,
    /// The handshake with the bank.
    Connecting,
    /// Sending the login.
    SigningIn,
    /// Changing the login password.
    ChangingPassword,
    /// Generating the new key pair and writing it, encrypted, to the drive.
    GeneratingKey,
    /// Asking the bank CA for the new key's certificate and storing it.
    RequestingCertificate,
}

/// Where a flow reports its [`Step`]s; `&|_| {}` ignores them.
pub type Progress<'a> = &'a (dyn Fn(Step) + Send + Sync);

/// The client: one bank, trusted through its CA certificate.
#[derive(Clone)]
pub struct Client {
    connection: BankConnection,
    bank_ca: Certificate,
    pkcs11_module: Option<PathBuf>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// A key's certificate, as the flows report it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct KeyCertificate {
    /// Where the key is: the key file's path, or the key's PKCS#11 URI (RFC 7512) on a token.
    pub key_path: PathBuf,
    /// Its generation on the drive.
    pub generation: u32,
    /// The certificate's serial, hex.
    pub serial: String,
    /// When it expires, Unix seconds.
    pub not_after: u64,
}

impl KeyCertificate {
    fn new(pending: &Pending, cert: &Certificate) -> Self {
        Self {
            key_path: pending.location(),
            generation: pending.generation(),
            serial: pki::serial_hex(cert.tbs_certificate().serial_number()),
            not_after: crate::unix_seconds(pki::not_after(cert)),
        }
    }
}

impl Client {
    /// A client for the bank the settings name.
    pub fn new(settings: &Settings) -> Result<Self, ClientError> {
        let bank_ca = settings.load_bank_ca()?;
        let connection =
            BankConnection::new(&settings.server, &bank_ca).map_err(ClientError::from)?;
        Ok(Self {
            connection,
            bank_ca,
            pkcs11_module: settings.pkcs11_module.clone(),
        })
    }

    /// The PKCS#11 module the settings file names, if any.
    pub fn pkcs11_module(&self) -> Option<&Path> {
        self.pkcs11_module.as_deref()
    }

    /// The bank CA certificate trusted.
    pub fn bank_ca(&self) -> &Certificate {
        &self.bank_ca
    }

    /// The bank's name, as its CA certificate gives it (organisation, else common name).
    pub fn bank_name(&self) -> String {
        let subject = self.bank_ca.tbs_certificate().subject();
        subject
            .organization()
            .ok()
            .flatten()
            .or_else(|| subject.common_name().ok().flatten())
            .map_or_else(|| "Bank".to_owned(), |s| s.value().to_string())
    }

    /// A session where only the bank is authenticated: first login, OTP login, recovery.
    pub async fn anonymous(&self) -> Result<BankSession, ClientError> {
        let session = self
            .connection
            .open(ClientAuthentication::Anonymous)
            .await?;
        Ok(BankSession::new(session, None))
    }

    /// Opens the current key on the drive or token and checks its certificate here, before
    /// any network: a missing key, a wrong key password or PIN, a broken key and an expired
    /// certificate each get their own error.
    pub fn unlock_key(
        &self,
        home: &KeyHome,
        secret: &Password,
        now: SystemTime,
    ) -> Result<SessionKey, ClientError> {
        let opened = home.unlock_current(secret)?;
        let certificate = opened
            .certificate
            .ok_or_else(|| ClientError::CertificateMissing(opened.location.clone()))?;
        match pki::validate_client_certificate(
            &certificate,
            &self.bank_ca,
            home.login(),
            now,
            &NoRevocationList,
        ) {
            Ok(_) => {}
            Err(CertError::Expired) => {
                return Err(ClientError::CertificateExpired(Some(pki::not_after(
                    &certificate,
                ))));
            }
            Err(e) => return Err(ClientError::BrokenKey(e.to_string())),
        }
        Ok(SessionKey {
            home: home.clone(),
            generation: opened.generation,
            signer: opened.signer,
            certificate,
        })
    }

    /// A session signed by the key (the bank refuses a revoked or expired certificate).
    pub async fn with_key(&self, key: SessionKey) -> Result<BankSession, ClientError> {
        let der = key
            .certificate
            .to_der()
            .map_err(|e| ClientError::BrokenKey(e.to_string()))?;
        let auth = ClientAuthentication::Key {
            login: key.home.login().clone(),
            certificate: der,
            signer: Box::new(key.signer.signer()),
        };
        let session = self
            .connection
            .open(auth)
            .await
            .map_err(|e| match ClientError::from(e) {
                ClientError::CertificateExpired(None) => {
                    ClientError::CertificateExpired(Some(pki::not_after(&key.certificate)))
                }
                // The token failed mid-handshake: say how, not that the channel did.
                e => key.signer.failure().map_or(e, ClientError::Token),
            })?;
        Ok(BankSession::new(session, Some(key)))
    }

    /// The bank's name and helpdesk, asked on an anonymous session (no key, no login).
    /// Fields longer than the bank may configure are cut, so a bank cannot flood a corner of
    /// the login screen.
    pub async fn bank_info(&self) -> Result<BankInfo, ClientError> {
        let mut session = self.anonymous().await?;
        let result = session.call(&tresor_core::api::Request::BankInfo {}).await;
        session.logout(&crate::media::SystemMedia).await;
        match result? {
            tresor_core::api::Reply::BankInfo(info) => Ok(bounded(info)),
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// Blocks the login's key at the bank (the user fears it stolen): on an anonymous
    /// session, with the password alone. Every certificate is suspended and every session
    /// ends; a recovery with an emergency password brings access back.
    pub async fn block_key(&self, login: &Login, password: &Password) -> Result<(), ClientError> {
        let mut session = self.anonymous().await?;
        let result = session
            .call(&tresor_core::api::Request::BlockKey {
                login: login.to_string(),
                password: password.clone(),
            })
            .await;
        session.logout(&crate::media::SystemMedia).await;
        match result? {
            tresor_core::api::Reply::Done => Ok(()),
            other => Err(ClientError::Protocol(format!("unexpected reply {other:?}"))),
        }
    }

    /// Login with the key: login, password, the key on the drive or token and its password
    /// or PIN.
    pub async fn login_with_key(
        &self,
        home: &KeyHome,
        password: &Password,
        key_password: &Password,
        progress: Progress<'_>,
    ) -> Result<BankSession, ClientError> {
        progress(Step::UnlockingKey);
        let key = self.unlock_key(home, key_password, SystemTime::now())?;
        let login = home.login().to_string();
        progress(Step::Connecting);
        let mut session = self.with_key(key).await?;
        progress(Step::SigningIn);
        session.login(&login, password, None, None).await?;
        Ok(session)
    }

    /// "Forgot my password": the key (unlocked here) signs a session on which the bank is
    /// asked to mail a one-time code to the user's verified address; where it went, masked.
    pub async fn forgot_password(
        &self,
        home: &KeyHome,
        key_password: &Password,
    ) -> Result<String, ClientError> {
        let key = self.unlock_key(home, key_password, SystemTime::now())?;
        let mut session = self.with_key(key).await?;
        let result = session.forgot_password(home.login().as_str()).await;
        session.logout(&crate::media::SystemMedia).await;
        result
    }

    /// Sets a new password with the mailed code, on a session signed by the key; the
    /// session comes back logged in.
    pub async fn reset_password(
        &self,
        home: &KeyHome,
        key_password: &Password,
        code: &Password,
        new: &Password,
    ) -> Result<BankSession, ClientError> {
        new.check_new_login_password(home.login())?;
        let key = self.unlock_key(home, key_password, SystemTime::now())?;
        let mut session = self.with_key(key).await?;
        session
            .reset_password(home.login().as_str(), code, new)
            .await?;
        Ok(session)
    }

    /// Login with an OTP code instead of the key: view and prepare only.
    pub async fn login_with_otp(
        &self,
        login: &Login,
        password: &Password,
        otp: &str,
    ) -> Result<BankSession, ClientError> {
        let mut session = self.anonymous().await?;
        session
            .login(login.as_str(), password, Some(otp), None)
            .await?;
        Ok(session)
    }

    /// First login: the initial password, the forced change, then the first key on the drive
    /// or token and its certificate. The drive is checked writable (the token's PIN checked)
    /// before the bank is asked anything, so that neither spends the initial password.
    pub async fn first_login(
        &self,
        store: &KeyHome,
        initial_password: &Password,
        new_password: &Password,
        key_password: &Password,
        progress: Progress<'_>,
    ) -> Result<KeyCertificate, ClientError> {
        new_password.check_new_login_password(store.login())?;
        store.check_new_secret(key_password)?;
        progress(Step::CheckingDrive);
        store.check_ready(key_password)?;
        progress(Step::Connecting);
        let mut session = self.anonymous().await?;
        progress(Step::SigningIn);
        let info = session
            .login(store.login().as_str(), initial_password, None, None)
            .await?;
        if info.stage == Stage::ChangePassword {
            progress(Step::ChangingPassword);
            session
                .change_password(initial_password, new_password)
                .await?;
        }
        let done = self
            .enroll(&mut session, store, key_password, progress)
            .await?;
        let _ = session.call(&tresor_core::api::Request::Logout {}).await;
        Ok(done)
    }

    /// The first key, on a session at the enroll stage (after the forced password change):
    /// written to the drive, certified, stored. The app calls this after its own screens.
    pub async fn enroll(
        &self,
        session: &mut BankSession,
        store: &KeyHome,
        key_password: &Password,
        progress: Progress<'_>,
    ) -> Result<KeyCertificate, ClientError> {
        match session.stage() {
            Some(Stage::Enroll) => {}
            Some(Stage::Reconnect) => {
                return Err(ClientError::NotPossible(
                    "this user already has a certificate: log in with the key, or recover it \
                     with an emergency password"
                        .into(),
                ));
            }
            _ => {
                return Err(ClientError::NotPossible(
                    "a first key is requested after the first password change".into(),
                ));
            }
        }
        self.certify_new_key(session, store, key_password, progress)
            .await
    }

    /// Renewal, on a session signed by the current key: a new key on the same drive, its
    /// certificate requested on this session, stored; the previous key stays as a backup.
    /// The new key takes the same key password, which must open the current key first, so
    /// that a typo cannot make a key nobody can open. Returns the new certificate's details;
    /// the session goes on with the key it was signed with, and the next login uses the new
    /// one.
    pub async fn renew(
        &self,
        session: &mut BankSession,
        key_password: &Password,
        progress: Progress<'_>,
    ) -> Result<KeyCertificate, ClientError> {
        let store = match session.key() {
            Some(k) if session.is_key_session() => k.home.clone(),
            _ => {
                return Err(ClientError::NotPossible(
                    "renewal needs a login with the current key".into(),
                ));
            }
        };
        if session.stage() != Some(Stage::Key) {
            return Err(ClientError::NotPossible(
                "renewal needs a completed login with the key".into(),
            ));
        }
        progress(Step::UnlockingKey);
        self.unlock_key(&store, key_password, SystemTime::now())?;
        self.certify_new_key(session, &store, key_password, progress)
            .await
    }

    /// Certificate recovery: with login, password and the bank's emergency password, a new
    /// key under a new key password, a new certificate; the bank revokes the old ones. The
    /// key is written before the emergency password (single use) is spent.
    pub async fn recover(
        &self,
        store: &KeyHome,
        password: &Password,
        emergency_password: &Password,
        new_key_password: &Password,
        progress: Progress<'_>,
    ) -> Result<KeyCertificate, ClientError> {
        store.check_new_secret(new_key_password)?;
        progress(Step::GeneratingKey);
        let pending = store.create_pending(new_key_password)?;
        progress(Step::Connecting);
        let mut session = self.anonymous().await?;
        progress(Step::SigningIn);
        let info = session
            .login(
                store.login().as_str(),
                password,
                None,
                Some(emergency_password),
            )
            .await?;
        if info.stage != Stage::Recovery {
            return Err(ClientError::Protocol(format!(
                "recovery login gave stage {:?}",
                info.stage
            )));
        }
        let done = self
            .certify(&mut session, store, new_key_password, &pending, progress)
            .await?;
        let _ = session.call(&tresor_core::api::Request::Logout {}).await;
        Ok(done)
    }

    async fn certify_new_key(
        &self,
        session: &mut BankSession,
        store: &KeyHome,
        key_password: &Password,
        progress: Progress<'_>,
    ) -> Result<KeyCertificate, ClientError> {
        progress(Step::GeneratingKey);
        let pending = store.create_pending(key_password)?;
        self.certify(session, store, key_password, &pending, progress)
            .await
    }

    /// Requests the certificate of a pending key, checks it, and stores it: the commit point.
    async fn certify(
        &self,
        session: &mut BankSession,
        store: &KeyHome,
        secret: &Password,
        pending: &Pending,
        progress: Progress<'_>,
    ) -> Result<KeyCertificate, ClientError> {
        progress(Step::RequestingCertificate);
        let cert = session.request_certificate(pending.csr_der()).await?;
        pki::validate_client_certificate(
            &cert,
            &self.bank_ca,
            store.login(),
            SystemTime::now(),
            &NoRevocationList,
        )
        .map_err(|e| ClientError::Protocol(format!("the issued certificate: {e}")))?;
        store.commit(secret, pending, &cert)?;
        Ok(KeyCertificate::new(pending, &cert))
    }
}

/// `info` with each field cut to [`MAX_BANK_FIELD`] characters and controls dropped.
fn bounded(info: BankInfo) -> BankInfo {
    let cut = |s: String| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .take(MAX_BANK_FIELD)
            .collect()
    };
    BankInfo {
        name: cut(info.name),
        phone: cut(info.phone),
        email: cut(info.email),
        hours: cut(info.hours),
        website: cut(info.website),
    }
}

/// Whether `drive` carries a key folder with a key for `login`.
pub fn has_key(drive: &Path, login: &Login) -> bool {
    KeyStore::new(drive, login)
        .latest_key()
        .is_ok_and(|g| g.is_some())
}

/// Drives that carry a key folder for `login`, removable ones first.
pub fn drives_with_key(media: &dyn MediaSource, login: &Login) -> Result<Vec<Drive>, ClientError> {
    let drives = media
        .list()
        .map_err(|e| ClientError::NotPossible(e.to_string()))?;
    Ok(drives
        .into_iter()
        .filter(|d| has_key(&d.mount_path, login))
        .collect())
}

/// The login's key folder on `drive`, or on the first drive that has one.
pub fn find_store(
    media: &dyn MediaSource,
    login: &Login,
    drive: Option<&Path>,
) -> Result<KeyStore, ClientError> {
    if let Some(drive) = drive {
        return Ok(KeyStore::new(drive, login));
    }
    match drives_with_key(media, login)?.into_iter().next() {
        Some(d) => Ok(KeyStore::new(&d.mount_path, login)),
        None => Err(ClientError::KeyNotFound {
            login: login.to_string(),
            drive: PathBuf::from(format!("(any plugged-in drive)/{TRESOR_DIR}")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tresor_core::testkit::TestBank;

    use super::*;
    use crate::error::ErrorKind;

    const PW: &str = "key password for tests";

    fn client(bank: &TestBank, dir: &Path) -> Client {
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, pki::certificate_to_pem(bank.ca_cert()).expect("pem")).expect("ca");
        Client::new(&Settings {
            // Nothing listens on port 9 (discard) here: the network error is immediate.
            server: "https://127.0.0.1:9".into(),
            bank_ca: ca,
            pkcs11_module: None,
        })
        .expect("client")
    }

    fn store_with(drive: &Path, who: &tresor_core::testkit::TestClient, certify: bool) -> KeyStore {
        let store = KeyStore::new(drive, &who.login);
        let pem = who
            .key
            .to_encrypted_pem_with(&Password::from(PW), 10, 8, 1)
            .expect("pem");
        let pending = store.write_pending(who.key.clone(), &pem).expect("write");
        if certify {
            store
                .commit_certificate(&pending, &who.cert)
                .expect("commit");
        }
        store
    }

    #[test]
    fn each_key_problem_has_its_own_error_and_offers_recovery() {
        let bank = TestBank::new("Test Bank");
        let dir = tempfile::tempdir().expect("tempdir");
        let client = client(&bank, dir.path());
        let now = SystemTime::now();

        let expired = bank.client_at(
            "olena",
            now - Duration::from_secs(40 * 86_400),
            Duration::from_secs(30 * 86_400),
        );
        let store = store_with(dir.path(), &expired, true);
        let err = client
            .unlock_key(&store.clone().into(), &PW.into(), now)
            .expect_err("expired");
        assert!(
            matches!(err, ClientError::CertificateExpired(Some(_))),
            "{err}"
        );
        assert!(err.to_string().contains("expired (on 20"), "{err}");
        let err = client
            .unlock_key(&store.clone().into(), &"not it".into(), now)
            .expect_err("wrong");
        assert!(matches!(err, ClientError::WrongKeyPassword), "{err}");

        let empty = KeyStore::new(dir.path(), &Login::new("nobody").expect("login"));
        let err = client
            .unlock_key(&empty.into(), &PW.into(), now)
            .expect_err("missing");
        assert!(
            matches!(err, ClientError::KeyNotFound { ref drive, .. } if drive == dir.path()),
            "{err}"
        );

        let uncertified = bank.client("petro");
        let store = store_with(dir.path(), &uncertified, false);
        let err = client
            .unlock_key(&store.clone().into(), &PW.into(), now)
            .expect_err("no certificate");
        assert!(matches!(err, ClientError::CertificateMissing(_)), "{err}");

        let other_bank = TestBank::new("Other Bank").client("ivan");
        let store = store_with(dir.path(), &other_bank, true);
        let err = client
            .unlock_key(&store.clone().into(), &PW.into(), now)
            .expect_err("other CA");
        assert!(matches!(err, ClientError::BrokenKey(_)), "{err}");

        for e in [
            ClientError::CertificateExpired(None),
            ClientError::WrongKeyPassword,
            ClientError::CertificateRevoked,
        ] {
            assert!(e.offers_recovery() && e.kind() == ErrorKind::Key);
        }
        assert!(!ClientError::LoginFailed("no".into()).offers_recovery());
    }

    #[test]
    fn an_unreachable_bank_is_a_network_error_after_the_key_is_checked() {
        let bank = TestBank::new("Test Bank");
        let dir = tempfile::tempdir().expect("tempdir");
        let client = client(&bank, dir.path());
        let store = store_with(dir.path(), &bank.client("olena"), true);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let err = runtime
            .block_on(client.login_with_key(&store.into(), &"password".into(), &PW.into(), &|_| {}))
            .expect_err("nothing listens");
        assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    }

    #[test]
    fn a_banks_helpdesk_is_cut_to_a_corner_of_the_screen() {
        let long = "9".repeat(500);
        let info = bounded(BankInfo {
            name: "Банк\u{1b}[2J Приклад".into(),
            phone: long,
            email: "help@bank.example".into(),
            hours: "Mon\r\nFri".into(),
            website: String::new(),
        });
        assert_eq!(info.name, "Банк[2J Приклад");
        assert_eq!(info.phone.chars().count(), MAX_BANK_FIELD);
        assert_eq!(info.email, "help@bank.example");
        assert_eq!(info.hours, "MonFri");
        assert_eq!(info.website, "");
    }
}
