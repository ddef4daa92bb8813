//! P-256 keys inside PKCS#11 tokens and HSMs, through `cryptoki`: generated on the token
//! (`CKA_SENSITIVE`, never `CKA_EXTRACTABLE`), used there, never read out.
//!
//! The client keeps its users' keys on tokens with it (`tresor_client::token`), the bank its
//! CA key. This crate knows tokens, sessions, objects and signatures; what the objects mean
//! (a login's generations, the bank's CA) is its callers'.
//!
//! * A module is loaded and initialised once per process (a second `C_Initialize` is an
//!   error), and every call into it is serialised: SoftHSM2 and several card drivers are not
//!   safe under concurrent sessions.
//! * SHA-256 is computed here and the token signs the digest with raw `CKM_ECDSA` (SoftHSM2
//!   and most smart cards offer no `CKM_ECDSA_SHA256`); its `r‖s` becomes low-S DER.
//! * A PIN goes to `C_Login` and is dropped; it is never stored.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
use tresor_core::p256::PublicKey;
use tresor_core::secret::Password;
use tresor_core::signer::{KeySigner, SignError, der_from_raw};
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::{Decode as _, Encode as _};

pub use cryptoki::object::ObjectClass as Class;

/// The environment variable naming the PKCS#11 module.
pub const MODULE_ENV: &str = "TRESOR_PKCS11_MODULE";

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
    /// The token holds no key under this label.
    #[error("the token {token:?} holds no key labelled {label:?}")]
    NoKey {
        /// The key's label.
        label: String,
        /// The token's label.
        token: String,
    },
    /// A key is there without its certificate (a first login or recovery not finished).
    #[error("the key {0} on the token has no certificate yet")]
    CertificateMissing(String),
    /// A certificate that is not for the key.
    #[error("the certificate does not match the key; nothing was changed")]
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
    #[cfg_attr(feature = "specta", specta(skip))]
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

    /// [`resolve_module`], then [`load`](Self::load).
    pub fn resolve(named: Option<&Path>) -> Result<Arc<Self>, TokenError> {
        Self::load(&resolve_module(named)?)
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
    pub fn find(self: &Arc<Self>, which: &str) -> Result<Token, TokenError> {
        let info = self
            .tokens()?
            .into_iter()
            .find(|t| t.label == which || t.serial == which)
            .ok_or_else(|| TokenError::NoToken(which.to_owned()))?;
        Ok(self.token(info))
    }

    /// A token from a listing of [`tokens`](Self::tokens), without listing again.
    pub fn token(self: &Arc<Self>, info: TokenInfo) -> Token {
        Token {
            module: Arc::clone(self),
            info,
        }
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

/// One token of a module.
#[derive(Clone)]
pub struct Token {
    module: Arc<TokenModule>,
    info: TokenInfo,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.info.label)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// What the token says of itself.
    pub fn info(&self) -> &TokenInfo {
        &self.info
    }

    /// An object on this token as a PKCS#11 URI (RFC 7512), for messages and `--json`.
    pub fn uri(&self, label: &str) -> String {
        format!(
            "pkcs11:token={};serial={};object={};type=private",
            uri_escape(&self.info.label),
            uri_escape(&self.info.serial),
            uri_escape(label)
        )
    }

    /// A read-only session, not logged in: public objects only (certificates).
    pub fn public_session(&self) -> Result<TokenSession, TokenError> {
        let slot = self.module.slot(&self.info)?;
        let _calls = self.module.serialise();
        let session = self
            .module
            .ctx
            .open_ro_session(slot)
            .map_err(failed("opening a session"))?;
        Ok(TokenSession {
            module: Arc::clone(&self.module),
            session,
            token: self.info.label.clone(),
        })
    }

    /// A read-write session logged in with `pin`. An application that is already logged in
    /// to the token (the app during a key session) keeps its login: PKCS#11 logs in per
    /// application, not per session.
    pub fn session(&self, pin: &Password) -> Result<TokenSession, TokenError> {
        let slot = self.module.slot(&self.info)?;
        let _calls = self.module.serialise();
        let session = self
            .module
            .ctx
            .open_rw_session(slot)
            .map_err(failed("opening a session"))?;
        let secret = AuthPin::from(pin.expose().to_owned());
        match session.login(UserType::User, Some(&secret)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(TokenSession {
                module: Arc::clone(&self.module),
                session,
                token: self.info.label.clone(),
            }),
            Err(P11Error::Pkcs11(RvError::PinIncorrect, _)) => Err(TokenError::WrongPin {
                tries_left: self.tries_left(slot),
            }),
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
}

/// A session with a token. Every call is serialised with the module's others.
pub struct TokenSession {
    module: Arc<TokenModule>,
    session: Session,
    token: String,
}

impl fmt::Debug for TokenSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSession").finish_non_exhaustive()
    }
}

impl TokenSession {
    fn no_key(&self, label: &str) -> TokenError {
        TokenError::NoKey {
            label: label.to_owned(),
            token: self.token.clone(),
        }
    }

    /// The labels of the objects of `class` this session sees.
    pub fn labels(&self, class: ObjectClass) -> Result<Vec<String>, TokenError> {
        let _calls = self.module.serialise();
        let handles = self
            .session
            .find_objects(&[Attribute::Class(class)])
            .map_err(failed("listing keys"))?;
        let mut out = Vec::new();
        for handle in handles {
            let attrs = self
                .session
                .get_attributes(handle, &[AttributeType::Label])
                .map_err(failed("listing keys"))?;
            if let Some(Attribute::Label(l)) = attrs.first() {
                out.push(String::from_utf8_lossy(l).into_owned());
            }
        }
        Ok(out)
    }

    fn find(&self, class: ObjectClass, label: &str) -> Result<Option<ObjectHandle>, TokenError> {
        let _calls = self.module.serialise();
        Ok(self
            .session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(failed("finding the key"))?
            .into_iter()
            .next())
    }

    /// Whether an object of `class` is labelled `label`.
    pub fn has(&self, class: ObjectClass, label: &str) -> Result<bool, TokenError> {
        Ok(self.find(class, label)?.is_some())
    }

    /// Generates a P-256 key pair on the token under `label`: the private key sensitive,
    /// never extractable, for signing only.
    pub fn generate(self, label: &str) -> Result<TokenSigner, TokenError> {
        let label_bytes = label.as_bytes().to_vec();
        let id = object_id(label);
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Label(label_bytes.clone()),
            Attribute::Id(id.clone()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label_bytes),
            Attribute::Id(id),
        ];
        {
            let _calls = self.module.serialise();
            self.session
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &public_template,
                    &private_template,
                )
                .map_err(failed("generating a key"))?;
        }
        self.signer(label)
    }

    /// The key pair labelled `label`, for signing (the session stays open in the signer).
    pub fn signer(self, label: &str) -> Result<TokenSigner, TokenError> {
        let no_key = || self.no_key(label);
        let key = self
            .find(ObjectClass::PRIVATE_KEY, label)?
            .ok_or_else(no_key)?;
        let public_key = self.public_key(label)?.ok_or_else(no_key)?;
        Ok(TokenSigner {
            module: Arc::clone(&self.module),
            session: Mutex::new(self.session),
            key,
            public_key,
            last_error: Mutex::new(None),
        })
    }

    /// The public key labelled `label`, if there is one.
    pub fn public_key(&self, label: &str) -> Result<Option<PublicKey>, TokenError> {
        let Some(handle) = self.find(ObjectClass::PUBLIC_KEY, label)? else {
            return Ok(None);
        };
        let _calls = self.module.serialise();
        let attrs = self
            .session
            .get_attributes(handle, &[AttributeType::EcPoint])
            .map_err(failed("reading the public key"))?;
        let Some(Attribute::EcPoint(point)) = attrs.first() else {
            return Err(TokenError::Failed {
                op: "reading the public key",
                detail: "no CKA_EC_POINT".into(),
            });
        };
        parse_ec_point(point)
            .map(Some)
            .ok_or_else(|| TokenError::Failed {
                op: "reading the public key",
                detail: "CKA_EC_POINT is not a P-256 point".into(),
            })
    }

    /// The certificate labelled `label`, if there is one.
    pub fn certificate(&self, label: &str) -> Result<Option<Certificate>, TokenError> {
        let Some(handle) = self.find(ObjectClass::CERTIFICATE, label)? else {
            return Ok(None);
        };
        let _calls = self.module.serialise();
        let attrs = self
            .session
            .get_attributes(handle, &[AttributeType::Value])
            .map_err(failed("reading the certificate"))?;
        let Some(Attribute::Value(der)) = attrs.first() else {
            return Err(TokenError::Failed {
                op: "reading the certificate",
                detail: "no CKA_VALUE".into(),
            });
        };
        Certificate::from_der(der)
            .map(Some)
            .map_err(|e| TokenError::Failed {
                op: "reading the certificate",
                detail: e.to_string(),
            })
    }

    /// Stores `cert` as a certificate object beside the key pair labelled `label` (same
    /// label and `CKA_ID`), after checking it certifies that key. Never replaces one.
    pub fn store_certificate(&self, label: &str, cert: &Certificate) -> Result<(), TokenError> {
        let key = self.public_key(label)?.ok_or_else(|| self.no_key(label))?;
        if !certifies(cert, &key) {
            return Err(TokenError::CertificateForAnotherKey);
        }
        if self.has(ObjectClass::CERTIFICATE, label)? {
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
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(object_id(label)),
            Attribute::Subject(tbs.subject().to_der().map_err(encode)?),
            Attribute::Issuer(tbs.issuer().to_der().map_err(encode)?),
            Attribute::SerialNumber(tbs.serial_number().to_der().map_err(encode)?),
            Attribute::Value(cert.to_der().map_err(encode)?),
        ];
        let _calls = self.module.serialise();
        self.session
            .create_object(&template)
            .map_err(failed("storing the certificate"))?;
        Ok(())
    }

    /// Removes the certificate, then the private and public keys labelled `label`: a key
    /// without a certificate is never taken as current.
    pub fn destroy(&self, label: &str) -> Result<(), TokenError> {
        for class in [
            ObjectClass::CERTIFICATE,
            ObjectClass::PRIVATE_KEY,
            ObjectClass::PUBLIC_KEY,
        ] {
            if let Some(handle) = self.find(class, label)? {
                let _calls = self.module.serialise();
                self.session
                    .destroy_object(handle)
                    .map_err(failed("removing an old key"))?;
            }
        }
        Ok(())
    }
}

/// Whether `cert` certifies `key`.
pub fn certifies(cert: &Certificate, key: &PublicKey) -> bool {
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

/// The `CKA_ID` tying a key, its public key and its certificate together.
fn object_id(label: &str) -> Vec<u8> {
    let digest = sha2::Sha256::digest(format!("tresor:{label}"));
    digest[..16].to_vec()
}

/// RFC 7512 percent-encoding of an attribute value.
pub fn uri_escape(s: &str) -> String {
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

/// A key on a token, unlocked: it keeps its logged-in session while it is used, as a key
/// file's key stays in memory. Its last failure is kept, so that a flow that sees a failed
/// handshake or signature can say precisely why.
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

    /// Signs `message` (ECDSA P-256 over its SHA-256, DER), with the precise error.
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let digest = sha2::Sha256::digest(message);
        let raw = {
            let _calls = self.module.serialise();
            session
                .sign(&Mechanism::Ecdsa, self.key, &digest)
                .map_err(failed("signing"))?
        };
        der_from_raw(&raw).map_err(|e| TokenError::Failed {
            op: "signing",
            detail: e.0,
        })
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
#[allow(clippy::unwrap_used)]
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
