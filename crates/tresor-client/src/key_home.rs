//! Where a login's key lives: a key file on a drive ([`KeyStore`]) or a key pair on a
//! PKCS#11 token ([`TokenStore`]). Every flow (first login, login, signing, renewal,
//! recovery) goes through [`KeyHome`], so that a token works wherever a drive does.
//!
//! The user's secret differs: a drive's key is opened with the key password, a token with
//! its PIN. Both arrive as a [`Password`] and neither is stored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tresor_core::keyfile::{KdfLimits, PrivateKey};
use tresor_core::login::Login;
use tresor_core::secret::Password;
use tresor_core::signer::KeySigner;
use tresor_core::x509_cert::Certificate;

use crate::error::ClientError;
use crate::keystore::{KeyStore, PendingKey};
use crate::media::MediaSource;
use crate::token::{self, TokenError, TokenModule, TokenPending, TokenSigner, TokenStore};

/// A login's key folder on a drive, or its keys on a token.
#[derive(Debug, Clone)]
pub enum KeyHome {
    /// An encrypted key file on a drive.
    Drive(KeyStore),
    /// A key pair inside a token.
    Token(TokenStore),
}

impl From<KeyStore> for KeyHome {
    fn from(store: KeyStore) -> Self {
        Self::Drive(store)
    }
}

impl From<TokenStore> for KeyHome {
    fn from(store: TokenStore) -> Self {
        Self::Token(store)
    }
}

/// A key opened with its secret.
pub struct OpenedKey {
    /// Its generation.
    pub generation: u32,
    /// Its signer.
    pub signer: KeySignerHandle,
    /// Its certificate, if stored.
    pub certificate: Option<Certificate>,
    /// Where it is: the key file's path, or the key's PKCS#11 URI.
    pub location: PathBuf,
}

/// An unlocked key: in memory, or a logged-in token session.
#[derive(Clone)]
pub enum KeySignerHandle {
    /// A key file's key, decrypted.
    File(Arc<PrivateKey>),
    /// A key inside a token.
    Token(Arc<TokenSigner>),
}

impl std::fmt::Debug for KeySignerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::File(_) => "KeySignerHandle::File",
            Self::Token(_) => "KeySignerHandle::Token",
        })
    }
}

impl KeySignerHandle {
    /// The signer, for the channel and for orders.
    pub fn signer(&self) -> Arc<dyn KeySigner> {
        match self {
            Self::File(key) => Arc::clone(key) as Arc<dyn KeySigner>,
            Self::Token(token) => Arc::clone(token) as Arc<dyn KeySigner>,
        }
    }

    /// Why the last signature failed, where the key lives outside the process.
    pub fn failure(&self) -> Option<TokenError> {
        match self {
            Self::File(_) => None,
            Self::Token(token) => token.take_error(),
        }
    }
}

/// A new key waiting for its certificate.
#[derive(Debug)]
pub enum Pending {
    /// Written to the drive.
    Drive(PendingKey),
    /// Generated on the token.
    Token(TokenPending),
}

impl Pending {
    /// The certificate request, DER.
    pub fn csr_der(&self) -> &[u8] {
        match self {
            Self::Drive(p) => &p.csr_der,
            Self::Token(p) => &p.csr_der,
        }
    }

    /// Its generation.
    pub fn generation(&self) -> u32 {
        match self {
            Self::Drive(p) => p.generation,
            Self::Token(p) => p.generation,
        }
    }

    /// Where it is: the key file's path, or the key's PKCS#11 URI.
    pub fn location(&self) -> PathBuf {
        match self {
            Self::Drive(p) => p.key_path.clone(),
            Self::Token(p) => PathBuf::from(&p.uri),
        }
    }
}

impl KeyHome {
    /// The login's key on `medium`, as the app names it: a token's medium string
    /// ([`token::medium_of`](crate::token::medium_of)), a drive's mount path or a folder
    /// standing in for one, or nothing for the first plugged-in drive with a key.
    pub fn resolve(
        media: &dyn MediaSource,
        login: &Login,
        medium: &str,
        module: Option<&Path>,
    ) -> Result<Self, ClientError> {
        if let Some(serial) = token::serial_of_medium(medium) {
            let module = TokenModule::load(&token::resolve_module(module)?)?;
            return Ok(TokenStore::open(module, &serial, login)?.into());
        }
        let drive = Some(Path::new(medium)).filter(|d| !d.as_os_str().is_empty());
        Ok(crate::flows::find_store(media, login, drive)?.into())
    }

    /// The login.
    pub fn login(&self) -> &Login {
        match self {
            Self::Drive(s) => s.login(),
            Self::Token(s) => s.login(),
        }
    }

    /// The drive's mount path, for a key on a drive.
    pub fn drive(&self) -> Option<&Path> {
        match self {
            Self::Drive(s) => Some(s.drive()),
            Self::Token(_) => None,
        }
    }

    /// The current key's certificate, read without the key password or PIN (for the key
    /// letter and the status).
    pub fn current_certificate(&self) -> Result<Certificate, ClientError> {
        match self {
            Self::Drive(s) => {
                let gens = s.key_generations()?;
                Ok(s.certificate(gens.current)?)
            }
            Self::Token(s) => Ok(s.current_certificate()?),
        }
    }

    /// Whether the key lives on a token (the secret is its PIN).
    pub fn is_token(&self) -> bool {
        matches!(self, Self::Token(_))
    }

    /// What to call it in messages: the drive's path, or the token's label.
    pub fn describe(&self) -> String {
        match self {
            Self::Drive(s) => s.drive().display().to_string(),
            Self::Token(s) => format!("token {}", s.token().label),
        }
    }

    /// Checks before a one-time password is spent: a drive can be written, a token takes
    /// the PIN.
    pub fn check_ready(&self, secret: &Password) -> Result<(), ClientError> {
        match self {
            Self::Drive(s) => Ok(s.probe_writable()?),
            Self::Token(s) => Ok(s.check_pin(secret)?),
        }
    }

    /// Checks a new secret against its policy: a new key password must be strong; a token's
    /// PIN is the token's own.
    pub fn check_new_secret(&self, secret: &Password) -> Result<(), ClientError> {
        match self {
            Self::Drive(_) => Ok(secret.check_new_key_password()?),
            Self::Token(_) => Ok(()),
        }
    }

    /// Opens the current key.
    pub fn unlock_current(&self, secret: &Password) -> Result<OpenedKey, ClientError> {
        match self {
            Self::Drive(s) => {
                let unlocked = s.unlock_current(secret, &KdfLimits::DEFAULT)?;
                Ok(OpenedKey {
                    generation: unlocked.generation,
                    signer: KeySignerHandle::File(Arc::new(unlocked.key)),
                    certificate: unlocked.certificate,
                    location: unlocked.key_path,
                })
            }
            Self::Token(s) => {
                let key = s.unlock_current(secret)?;
                Ok(OpenedKey {
                    generation: key.generation,
                    location: PathBuf::from(s.uri(key.generation)),
                    signer: KeySignerHandle::Token(key.signer),
                    certificate: key.certificate,
                })
            }
        }
    }

    /// A new key, waiting for its certificate; the current key is untouched.
    pub fn create_pending(&self, secret: &Password) -> Result<Pending, ClientError> {
        match self {
            Self::Drive(s) => Ok(Pending::Drive(s.create_pending_key(secret)?)),
            Self::Token(s) => Ok(Pending::Token(s.create_pending_key(secret)?)),
        }
    }

    /// Stores the certificate of a pending key: the commit point that makes it current.
    pub fn commit(
        &self,
        secret: &Password,
        pending: &Pending,
        cert: &Certificate,
    ) -> Result<(), ClientError> {
        match (self, pending) {
            (Self::Drive(s), Pending::Drive(p)) => Ok(s.commit_certificate(p, cert)?),
            (Self::Token(s), Pending::Token(p)) => Ok(s.commit_certificate(secret, p, cert)?),
            _ => Err(ClientError::NotPossible(
                "the new key is not where the certificate is to be stored".into(),
            )),
        }
    }
}
