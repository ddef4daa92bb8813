//! Keys on a PKCS#11 token: generated inside the token, never extractable, used through
//! `cryptoki`.
//!
//! A login's keys on a token follow the same generations as on a drive
//! ([`keystore`](crate::keystore)): each generation `N` is a private key, its public key and,
//! once the bank has issued it, a certificate object, all labelled `Tresor <login> <N>` and
//! sharing one `CKA_ID`. The highest generation with a certificate is current; storing the
//! certificate is the commit point; the previous complete generation stays as a backup.
//!
//! The PIN replaces the key password. It is never stored: it goes to `C_Login` and is
//! dropped. SHA-256 is computed here and the token signs the digest with raw `CKM_ECDSA`
//! (SoftHSM2 and most smart cards offer no `CKM_ECDSA_SHA256`); its `r‖s` becomes DER.
//!
//! A module is loaded and initialised once per process (a second `C_Initialize` is an error),
//! and every call into it is serialised: SoftHSM2 and several card drivers are not safe
//! under concurrent sessions.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::Digest as _;
use tresor_core::channel::HandshakeSigner;
use tresor_core::login::Login;
use tresor_core::p256::PublicKey;
use tresor_core::pki;
use tresor_core::secret::Password;
use tresor_core::signer::{KeySigner, SignError, der_from_raw};
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::{Decode as _, Encode as _};

use crate::keystore::{self, Generation};

/// The environment variable naming the PKCS#11 module.
pub const MODULE_ENV: &str = "TRESOR_PKCS11_MODULE";
/// The environment variable holding the token's PIN (never a command-line argument).
pub const PIN_ENV: &str = "TRESOR_TOKEN_PIN";

/// Where the usual modules are installed, tried in order when none is configured: OpenSC
/// (which drives most smart cards and USB tokens), then SoftHSM2.
pub const DEFAULT_MODULES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/local/lib/opensc-pkcs11.so",
    "/Library/OpenSC/lib/opensc-pkcs11.so",
    "C:\\Windows\\System32\\opensc-pkcs11.dll",
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The DER OID of prime256v1 (P-256), as `CKA_EC_PARAMS`.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// How many complete generations stay on the token, as on a drive.
const KEEP_COMPLETE: usize = 2;

/// Why a token could not be used. Each says what the user can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No module configured and none of the usual ones installed.
    #[error(
        "no PKCS#11 module found: install OpenSC (or your token's driver), or name the module \
         with --pkcs11-module or {MODULE_ENV}"
    )]
    NoModule,
    /// The path is not a PKCS#11 module.
    #[error("{path} is not a PKCS#11 module: {detail}")]
    NotAModule {
        /// The path given.
        path: PathBuf,
        /// What loading it said.
        detail: String,
    },
    /// No plugged-in token has that label or serial.
    #[error("no token labelled or numbered {0:?} is plugged in")]
    NoToken(String),
    /// The PIN is wrong.
    #[error("wrong PIN{}", match .tries_left {
        Some(1) => ": one try left before the token locks its PIN",
        Some(_) => ": few tries left before the token locks its PIN",
        None => "",
    })]
    WrongPin {
        /// Tries left, where the token says: `Some(1)` on the final try, `Some(2)` for "few".
        tries_left: Option<u8>,
    },
    /// The PIN is locked after too many wrong tries.
    #[error(
        "the token's PIN is locked after too many wrong tries: its administrator can unblock it \
         (with the PUK or security officer PIN)"
    )]
    PinLocked,
    /// The token went away (pulled out) or closed our session mid-operation.
    #[error(
        "the token was removed or stopped answering during the operation: plug it back in and \
         try again"
    )]
    Removed,
    /// The token holds no Tresor key for this login.
    #[error("the token {token:?} holds no Tresor key for {login}")]
    NoKeyForLogin {
        /// The login.
        login: String,
        /// The token's label.
        token: String,
    },
    /// A key is there without its certificate (a first login or recovery not finished).
    #[error("the key {0} on the token has no certificate yet")]
    CertificateMissing(String),
    /// A certificate that is not for the pending key.
    #[error("the certificate does not match the new key; the current key is unchanged")]
    CertificateForAnotherKey,
    /// No room on the token for another key.
    #[error("the token has no room for another key: delete old keys with its own tool")]
    Full,
    /// A key already exists where a first key was asked for.
    #[error(
        "the token already holds a key for {0}; keys are renewed or recovered, never overwritten"
    )]
    KeyExists(String),
    /// Anything else the module said.
    #[error("the token refused {op}: {detail}")]
    Failed {
        /// What was being done.
        op: &'static str,
        /// The module's words.
        detail: String,
    },
}

/// What a PKCS#11 return value means for the user: the pure half of error handling, tested
/// as a table.
pub fn classify(rv: RvError) -> Option<TokenError> {
    Some(match rv {
        RvError::PinIncorrect => TokenError::WrongPin { tries_left: None },
        RvError::PinLocked => TokenError::PinLocked,
        RvError::DeviceRemoved
        | RvError::TokenNotPresent
        | RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::DeviceError
        | RvError::UserNotLoggedIn
        // The key's handle went with the token (SoftHSM2 says this when its token folder
        // disappears under an open session).
        | RvError::KeyHandleInvalid
        | RvError::ObjectHandleInvalid => TokenError::Removed,
        RvError::DeviceMemory => TokenError::Full,
        _ => return None,
    })
}

fn failed(op: &'static str) -> impl Fn(P11Error) -> TokenError {
    move |e| match &e {
        P11Error::Pkcs11(rv, _) => classify(*rv).unwrap_or(TokenError::Failed {
            op,
            detail: e.to_string(),
        }),
        _ => TokenError::Failed {
            op,
            detail: e.to_string(),
        },
    }
}

/// A token as the user picks it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TokenInfo {
    /// Its label (set when it was initialised).
    pub label: String,
    /// The device's model.
    pub model: String,
    /// Its manufacturer.
    pub manufacturer: String,
    /// Its serial number.
    pub serial: String,
    /// The module's slot number, for this process only.
    #[serde(skip)]
    slot: u64,
}

/// The module to load: the one named, else [`MODULE_ENV`], else the first of
/// [`DEFAULT_MODULES`] installed.
pub fn resolve_module(named: Option<&Path>) -> Result<PathBuf, TokenError> {
    if let Some(path) = named {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(MODULE_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    DEFAULT_MODULES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(TokenError::NoModule)
}

/// A loaded, initialised PKCS#11 module.
pub struct TokenModule {
    path: PathBuf,
    ctx: Pkcs11,
    /// Every call into the module holds this.
    calls: Mutex<()>,
}

impl fmt::Debug for TokenModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenModule")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

type Modules = Mutex<HashMap<PathBuf, Arc<TokenModule>>>;

impl TokenModule {
    /// Loads and initialises the module at `path`, once per process.
    pub fn load(path: &Path) -> Result<Arc<Self>, TokenError> {
        static LOADED: OnceLock<Modules> = OnceLock::new();
        let not_a_module = |detail: String| TokenError::NotAModule {
            path: path.to_path_buf(),
            detail,
        };
        let key = std::fs::canonicalize(path).map_err(|e| not_a_module(e.to_string()))?;
        let mut loaded = LOADED
            .get_or_init(Modules::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(module) = loaded.get(&key) {
            return Ok(Arc::clone(module));
        }
        let ctx = Pkcs11::new(&key).map_err(|e| not_a_module(e.to_string()))?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(not_a_module(e.to_string())),
        }
        let module = Arc::new(Self {
            path: key.clone(),
            ctx,
            calls: Mutex::new(()),
        });
        loaded.insert(key, Arc::clone(&module));
        Ok(module)
    }

    /// The module's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn serialise(&self) -> MutexGuard<'_, ()> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tokens plugged in now.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let _calls = self.serialise();
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(failed("listing tokens"))?;
        let mut out = Vec::new();
        for slot in slots {
            // A token pulled out between the two calls is simply not listed.
            let Ok(info) = self.ctx.get_token_info(slot) else {
                continue;
            };
            if !info.token_initialized() {
                continue;
            }
            out.push(TokenInfo {
                label: info.label().trim().to_owned(),
                model: info.model().trim().to_owned(),
                manufacturer: info.manufacturer_id().trim().to_owned(),
                serial: info.serial_number().trim().to_owned(),
                slot: slot.id(),
            });
        }
        Ok(out)
    }

    /// The token whose label or serial is `which`.
    pub fn find(&self, which: &str) -> Result<TokenInfo, TokenError> {
        self.tokens()?
            .into_iter()
            .find(|t| t.label == which || t.serial == which)
            .ok_or_else(|| TokenError::NoToken(which.to_owned()))
    }

    fn slot(&self, token: &TokenInfo) -> Result<Slot, TokenError> {
        let _calls = self.serialise();
        self.ctx
            .get_slots_with_token()
            .map_err(failed("listing tokens"))?
            .into_iter()
            .find(|s| s.id() == token.slot)
            .ok_or(TokenError::Removed)
    }
}

/// One login's keys on one token.
#[derive(Clone)]
pub struct TokenStore {
    module: Arc<TokenModule>,
    token: TokenInfo,
    login: Login,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("token", &self.token.label)
            .field("login", &self.login.as_str())
            .finish_non_exhaustive()
    }
}

/// A key on the token, opened with the PIN.
#[derive(Debug)]
pub struct TokenKey {
    /// Its generation.
    pub generation: u32,
    /// The signer (it keeps a logged-in session with the token).
    pub signer: Arc<TokenSigner>,
    /// Its certificate, if stored (checked to match the key).
    pub certificate: Option<Certificate>,
}

/// A new key pair on the token, waiting for its certificate.
pub struct TokenPending {
    /// Its generation.
    pub generation: u32,
    /// The public key, to check the certificate against.
    pub public_key: PublicKey,
    /// The PKCS#10 request, DER, signed on the token.
    pub csr_der: Vec<u8>,
    /// The key's PKCS#11 URI.
    pub uri: String,
}

impl fmt::Debug for TokenPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPending")
            .field("generation", &self.generation)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl TokenStore {
    /// `login`'s keys on the token labelled or numbered `which`.
    pub fn open(module: Arc<TokenModule>, which: &str, login: &Login) -> Result<Self, TokenError> {
        let token = module.find(which)?;
        Ok(Self {
            module,
            token,
            login: login.clone(),
        })
    }

    /// The token.
    pub fn token(&self) -> &TokenInfo {
        &self.token
    }

    /// The login.
    pub fn login(&self) -> &Login {
        &self.login
    }

    /// The label of generation `n`'s objects.
    pub fn label(&self, n: u32) -> String {
        format!("Tresor {} {n}", self.login.as_str())
    }

    /// Generation `n`'s key as a PKCS#11 URI (RFC 7512), for messages and `--json`.
    pub fn uri(&self, n: u32) -> String {
        format!(
            "pkcs11:token={};serial={};object={};type=private",
            uri_escape(&self.token.label),
            uri_escape(&self.token.serial),
            uri_escape(&self.label(n))
        )
    }

    /// A read-write session logged in with `pin`. An application that is already logged in
    /// to the token (the app during a key session) keeps its login: the token does not
    /// check a PIN twice.
    fn session(&self, pin: &Password) -> Result<Session, TokenError> {
        let slot = self.module.slot(&self.token)?;
        let _calls = self.module.serialise();
        let session = self
            .module
            .ctx
            .open_rw_session(slot)
            .map_err(failed("opening a session"))?;
        let secret = AuthPin::from(pin.expose().to_owned());
        match session.login(UserType::User, Some(&secret)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(P11Error::Pkcs11(RvError::PinIncorrect, _)) => Err(TokenError::WrongPin {
                tries_left: self.tries_left(slot),
            }),
            Err(P11Error::Pkcs11(RvError::PinLocked, _)) => Err(TokenError::PinLocked),
            Err(e) => Err(failed("the PIN")(e)),
        }
    }

    fn tries_left(&self, slot: Slot) -> Option<u8> {
        let info = self.module.ctx.get_token_info(slot).ok()?;
        if info.user_pin_final_try() {
            Some(1)
        } else if info.user_pin_count_low() {
            Some(2)
        } else {
            None
        }
    }

    /// Checks the PIN (a flow that must not spend a one-time password on a wrong PIN asks
    /// first).
    pub fn check_pin(&self, pin: &Password) -> Result<(), TokenError> {
        let session = self.session(pin)?;
        let _calls = self.module.serialise();
        drop(session);
        Ok(())
    }

    /// The login's generations on the token, oldest first.
    fn generations(&self, session: &Session) -> Result<Vec<Generation>, TokenError> {
        let _calls = self.module.serialise();
        let mut gens: Vec<Generation> = Vec::new();
        for (class, is_key) in [
            (ObjectClass::PRIVATE_KEY, true),
            (ObjectClass::CERTIFICATE, false),
        ] {
            let handles = session
                .find_objects(&[Attribute::Class(class)])
                .map_err(failed("listing keys"))?;
            for handle in handles {
                let label = match session.get_attributes(handle, &[AttributeType::Label]) {
                    Ok(attrs) => match attrs.first() {
                        Some(Attribute::Label(l)) => String::from_utf8_lossy(l).into_owned(),
                        _ => continue,
                    },
                    Err(e) => return Err(failed("listing keys")(e)),
                };
                let Some(n) = self.parse_label(&label) else {
                    continue;
                };
                keystore::note_generation(&mut gens, n, is_key);
            }
        }
        gens.sort();
        Ok(gens)
    }

    fn parse_label(&self, label: &str) -> Option<u32> {
        let rest = label.strip_prefix("Tresor ")?;
        let (login, n) = rest.rsplit_once(' ')?;
        if login != self.login.as_str() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n.parse().ok().filter(|&n| n > 0)
    }

    fn find_one(
        &self,
        session: &Session,
        class: ObjectClass,
        n: u32,
    ) -> Result<Option<ObjectHandle>, TokenError> {
        let _calls = self.module.serialise();
        Ok(session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(self.label(n).into_bytes()),
            ])
            .map_err(failed("finding the key"))?
            .into_iter()
            .next())
    }

    fn no_key(&self) -> TokenError {
        TokenError::NoKeyForLogin {
            login: self.login.to_string(),
            token: self.token.label.clone(),
        }
    }

    /// Opens the current key (the newest with a certificate) and its certificate.
    pub fn unlock_current(&self, pin: &Password) -> Result<TokenKey, TokenError> {
        let session = self.session(pin)?;
        let gens = self.generations(&session)?;
        let Some(current) = gens.iter().rev().find(|g| g.is_complete()) else {
            return Err(match gens.iter().rev().find(|g| g.has_key) {
                Some(g) => TokenError::CertificateMissing(self.uri(g.number)),
                None => self.no_key(),
            });
        };
        self.open_generation(session, current.number)
    }

    fn open_generation(&self, session: Session, n: u32) -> Result<TokenKey, TokenError> {
        let key = self
            .find_one(&session, ObjectClass::PRIVATE_KEY, n)?
            .ok_or_else(|| self.no_key())?;
        let public_key = self.public_key(&session, n)?;
        let certificate = match self.find_one(&session, ObjectClass::CERTIFICATE, n)? {
            Some(handle) => {
                let der = self.value(&session, handle)?;
                let cert = Certificate::from_der(&der).map_err(|e| TokenError::Failed {
                    op: "reading the certificate",
                    detail: e.to_string(),
                })?;
                if !pki_key_matches(&cert, &public_key) {
                    return Err(TokenError::CertificateForAnotherKey);
                }
                Some(cert)
            }
            None => None,
        };
        Ok(TokenKey {
            generation: n,
            signer: Arc::new(TokenSigner {
                module: Arc::clone(&self.module),
                session: Mutex::new(session),
                key,
                public_key,
                last_error: Mutex::new(None),
            }),
            certificate,
        })
    }

    fn public_key(&self, session: &Session, n: u32) -> Result<PublicKey, TokenError> {
        let handle = self
            .find_one(session, ObjectClass::PUBLIC_KEY, n)?
            .ok_or_else(|| self.no_key())?;
        let _calls = self.module.serialise();
        let attrs = session
            .get_attributes(handle, &[AttributeType::EcPoint])
            .map_err(failed("reading the public key"))?;
        let Some(Attribute::EcPoint(point)) = attrs.first() else {
            return Err(TokenError::Failed {
                op: "reading the public key",
                detail: "no CKA_EC_POINT".into(),
            });
        };
        parse_ec_point(point).ok_or_else(|| TokenError::Failed {
            op: "reading the public key",
            detail: "CKA_EC_POINT is not a P-256 point".into(),
        })
    }

    fn value(&self, session: &Session, handle: ObjectHandle) -> Result<Vec<u8>, TokenError> {
        let _calls = self.module.serialise();
        let attrs = session
            .get_attributes(handle, &[AttributeType::Value])
            .map_err(failed("reading the certificate"))?;
        match attrs.into_iter().next() {
            Some(Attribute::Value(v)) => Ok(v),
            _ => Err(TokenError::Failed {
                op: "reading the certificate",
                detail: "no CKA_VALUE".into(),
            }),
        }
    }

    /// The first key for this login on the token, refused where any is there already.
    pub fn create_first_key(&self, pin: &Password) -> Result<TokenPending, TokenError> {
        let session = self.session(pin)?;
        if !self.generations(&session)?.is_empty() {
            return Err(TokenError::KeyExists(self.login.to_string()));
        }
        self.generate(session)
    }

    /// Generates the next generation's key pair on the token (sensitive, never extractable)
    /// and its request, signed on the token. The current key is untouched.
    pub fn create_pending_key(&self, pin: &Password) -> Result<TokenPending, TokenError> {
        let session = self.session(pin)?;
        self.generate(session)
    }

    fn generate(&self, session: Session) -> Result<TokenPending, TokenError> {
        let next = self
            .generations(&session)?
            .last()
            .map_or(1, |g| g.number.saturating_add(1));
        let label = self.label(next).into_bytes();
        let id = object_id(&self.login, next);
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Label(label.clone()),
            Attribute::Id(id.clone()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label),
            Attribute::Id(id),
        ];
        let (_, private) = {
            let _calls = self.module.serialise();
            session
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &public_template,
                    &private_template,
                )
                .map_err(failed("generating a key"))?
        };
        let public_key = self.public_key(&session, next)?;
        let signer = TokenSigner {
            module: Arc::clone(&self.module),
            session: Mutex::new(session),
            key: private,
            public_key,
            last_error: Mutex::new(None),
        };
        let csr = pki::build_csr_with(&signer, &self.login).map_err(|e| match e {
            pki::PkiError::Sign(e) => signer.take_error().unwrap_or(TokenError::Failed {
                op: "signing the certificate request",
                detail: e.0,
            }),
            e => TokenError::Failed {
                op: "building the certificate request",
                detail: e.to_string(),
            },
        })?;
        let csr_der = csr.to_der().map_err(|e| TokenError::Failed {
            op: "building the certificate request",
            detail: e.to_string(),
        })?;
        Ok(TokenPending {
            generation: next,
            public_key,
            csr_der,
            uri: self.uri(next),
        })
    }

    /// Stores the bank's certificate beside the pending key: the commit point. Then removes
    /// generations older than the backup, and stale pending keys.
    pub fn commit_certificate(
        &self,
        pin: &Password,
        pending: &TokenPending,
        cert: &Certificate,
    ) -> Result<(), TokenError> {
        if !pki_key_matches(cert, &pending.public_key) {
            return Err(TokenError::CertificateForAnotherKey);
        }
        let session = self.session(pin)?;
        let n = pending.generation;
        if self
            .find_one(&session, ObjectClass::CERTIFICATE, n)?
            .is_some()
        {
            return Err(TokenError::Failed {
                op: "storing the certificate",
                detail: "this key already has one; a stored certificate is never replaced".into(),
            });
        }
        let tbs = cert.tbs_certificate();
        let encode = |e: tresor_core::x509_cert::der::Error| TokenError::Failed {
            op: "storing the certificate",
            detail: e.to_string(),
        };
        let template = [
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(self.label(n).into_bytes()),
            Attribute::Id(object_id(&self.login, n)),
            Attribute::Subject(tbs.subject().to_der().map_err(encode)?),
            Attribute::Issuer(tbs.issuer().to_der().map_err(encode)?),
            Attribute::SerialNumber(tbs.serial_number().to_der().map_err(encode)?),
            Attribute::Value(cert.to_der().map_err(encode)?),
        ];
        {
            let _calls = self.module.serialise();
            session
                .create_object(&template)
                .map_err(failed("storing the certificate"))?;
        }
        // Best effort: a failure here leaves extra objects, never a missing one.
        let _ = self.prune(&session);
        Ok(())
    }

    /// Removes complete generations beyond the current one and its backup, and pending
    /// keys older than the current one (the same rule as on a drive).
    fn prune(&self, session: &Session) -> Result<(), TokenError> {
        let gens = self.generations(session)?;
        for g in keystore::stale_generations(&gens, KEEP_COMPLETE) {
            // Certificate first: a key without a certificate is never taken as current.
            for class in [
                ObjectClass::CERTIFICATE,
                ObjectClass::PRIVATE_KEY,
                ObjectClass::PUBLIC_KEY,
            ] {
                if let Some(handle) = self.find_one(session, class, g.number)? {
                    let _calls = self.module.serialise();
                    session
                        .destroy_object(handle)
                        .map_err(failed("removing an old key"))?;
                }
            }
        }
        Ok(())
    }
}

/// Whether `cert` certifies `key`.
fn pki_key_matches(cert: &Certificate, key: &PublicKey) -> bool {
    use tresor_core::p256::elliptic_curve::sec1::ToSec1Point as _;
    cert.tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .is_some_and(|b| b == key.to_sec1_point(false).as_bytes())
}

/// `CKA_EC_POINT`: a DER OCTET STRING around the uncompressed point (PKCS#11 2.40), or the
/// bare point (some older modules).
fn parse_ec_point(attr: &[u8]) -> Option<PublicKey> {
    let point = match attr {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        _ => attr,
    };
    PublicKey::from_sec1_bytes(point).ok()
}

/// The `CKA_ID` tying a generation's key, public key and certificate together.
fn object_id(login: &Login, n: u32) -> Vec<u8> {
    let digest = sha2::Sha256::digest(format!("tresor:{}:{n}", login.as_str()));
    digest[..16].to_vec()
}

/// RFC 7512 percent-encoding of an attribute value.
fn uri_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Signs the digest of `message` with `key` in `session`.
fn sign_on_token(
    module: &TokenModule,
    session: &Session,
    key: ObjectHandle,
    message: &[u8],
) -> Result<Vec<u8>, TokenError> {
    let digest = sha2::Sha256::digest(message);
    let raw = {
        let _calls = module.serialise();
        session
            .sign(&Mechanism::Ecdsa, key, &digest)
            .map_err(failed("signing"))?
    };
    der_from_raw(&raw).map_err(|e| TokenError::Failed {
        op: "signing",
        detail: e.0,
    })
}

/// A key on the token, unlocked: it keeps the logged-in session while the bank session
/// lasts, as a key file's key stays in memory. Its last failure is kept, so that the flow
/// that sees a failed handshake or signature can say precisely why.
pub struct TokenSigner {
    module: Arc<TokenModule>,
    session: Mutex<Session>,
    key: ObjectHandle,
    public_key: PublicKey,
    last_error: Mutex<Option<TokenError>>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner").finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Why the last signature failed, if it did.
    pub fn take_error(&self) -> Option<TokenError> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Signs `message`, with the precise error.
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        sign_on_token(&self.module, &session, self.key, message)
    }
}

impl HandshakeSigner for TokenSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_message(message).map_err(|e| {
            let text = e.to_string();
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            SignError(text)
        })
    }
}

impl KeySigner for TokenSigner {
    fn public_key(&self) -> PublicKey {
        self.public_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_map_to_what_the_user_can_do() {
        let cases = [
            (
                RvError::PinIncorrect,
                Some(TokenError::WrongPin { tries_left: None }),
            ),
            (RvError::PinLocked, Some(TokenError::PinLocked)),
            (RvError::DeviceRemoved, Some(TokenError::Removed)),
            (RvError::TokenNotPresent, Some(TokenError::Removed)),
            (RvError::SessionHandleInvalid, Some(TokenError::Removed)),
            (RvError::SessionClosed, Some(TokenError::Removed)),
            (RvError::UserNotLoggedIn, Some(TokenError::Removed)),
            (RvError::KeyHandleInvalid, Some(TokenError::Removed)),
            (RvError::ObjectHandleInvalid, Some(TokenError::Removed)),
            (RvError::DeviceMemory, Some(TokenError::Full)),
            (RvError::MechanismInvalid, None),
            (RvError::GeneralError, None),
        ];
        for (rv, want) in cases {
            assert_eq!(classify(rv), want, "{rv:?}");
        }
        assert_eq!(
            TokenError::WrongPin {
                tries_left: Some(1)
            }
            .to_string(),
            "wrong PIN: one try left before the token locks its PIN"
        );
        assert_eq!(
            TokenError::WrongPin { tries_left: None }.to_string(),
            "wrong PIN"
        );
    }

    #[test]
    fn ec_points_come_wrapped_or_bare() {
        use tresor_core::p256::elliptic_curve::sec1::ToSec1Point as _;
        let key = tresor_core::PrivateKey::generate().public_key();
        let bare = key.to_sec1_point(false).as_bytes().to_vec();
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&bare);
        assert_eq!(parse_ec_point(&wrapped), Some(key));
        assert_eq!(parse_ec_point(&bare), Some(key));
        assert_eq!(parse_ec_point(&wrapped[..40]), None);
    }

    #[test]
    fn uris_escape_what_rfc_7512_reserves() {
        assert_eq!(uri_escape("Tresor olena 2"), "Tresor%20olena%202");
        assert_eq!(uri_escape("a;b=c/d"), "a%3Bb%3Dc%2Fd");
    }
}
