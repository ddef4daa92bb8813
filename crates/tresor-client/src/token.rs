//! A login's keys on a PKCS#11 token (through [`tresor_pkcs11`]), kept as on a drive.
//!
//! A login's keys on a token follow the same generations as on a drive
//! ([`keystore`](crate::keystore)): each generation `N` is a private key, its public key and,
//! once the bank has issued it, a certificate object, all labelled `Tresor <login> <N>` and
//! sharing one `CKA_ID`. The highest generation with a certificate is current; storing the
//! certificate is the commit point; the previous complete generation stays as a backup.
//!
//! The PIN replaces the key password: it comes from [`PIN_ENV`] or a prompt, goes to the
//! token and is dropped.

use std::fmt;
use std::sync::Arc;

use tresor_core::login::Login;
use tresor_core::p256::PublicKey;
use tresor_core::pki;
use tresor_core::secret::Password;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::Encode as _;
use tresor_pkcs11::{Class, TokenSession};
pub use tresor_pkcs11::{
    DEFAULT_MODULES, MODULE_ENV, Token, TokenError, TokenInfo, TokenModule, TokenSigner,
    resolve_module,
};

use crate::keystore::{self, Generation};

/// The environment variable holding the token's PIN (never a command-line argument).
pub const PIN_ENV: &str = "TRESOR_TOKEN_PIN";

/// How many complete generations stay on the token, as on a drive.
const KEEP_COMPLETE: usize = 2;

/// One login's keys on one token.
#[derive(Clone)]
pub struct TokenStore {
    token: Token,
    login: Login,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("token", &self.token.info().label)
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
        Ok(Self {
            token: module.find(which)?,
            login: login.clone(),
        })
    }

    /// The token.
    pub fn token(&self) -> &TokenInfo {
        self.token.info()
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
        self.token.uri(&self.label(n))
    }

    /// Checks the PIN (a flow that must not spend a one-time password on a wrong PIN asks
    /// first).
    pub fn check_pin(&self, pin: &Password) -> Result<(), TokenError> {
        self.token.session(pin).map(drop)
    }

    /// Whether the token holds a certified key for the login, asked without the PIN from
    /// its public certificate objects (the app marks such a token, as a drive with a key).
    pub fn has_key(&self) -> bool {
        self.token
            .public_session()
            .and_then(|s| s.labels(Class::CERTIFICATE))
            .is_ok_and(|labels| labels.iter().any(|l| self.parse_label(l).is_some()))
    }

    /// The newest certificate of the login on the token, read without the PIN (certificates
    /// are public objects): the current key's, since storing it is the commit.
    pub fn current_certificate(&self) -> Result<Certificate, TokenError> {
        let session = self.token.public_session()?;
        let newest = session
            .labels(Class::CERTIFICATE)?
            .iter()
            .filter_map(|l| self.parse_label(l))
            .max()
            .ok_or_else(|| self.no_key())?;
        session
            .certificate(&self.label(newest))?
            .ok_or_else(|| self.no_key())
    }

    /// The login's generations on the token, oldest first.
    fn generations(&self, session: &TokenSession) -> Result<Vec<Generation>, TokenError> {
        let mut gens: Vec<Generation> = Vec::new();
        for (class, is_key) in [(Class::PRIVATE_KEY, true), (Class::CERTIFICATE, false)] {
            for label in session.labels(class)? {
                if let Some(n) = self.parse_label(&label) {
                    keystore::note_generation(&mut gens, n, is_key);
                }
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

    fn no_key(&self) -> TokenError {
        TokenError::NoKeyForLogin {
            login: self.login.to_string(),
            token: self.token.info().label.clone(),
        }
    }

    /// Opens the current key (the newest with a certificate) and its certificate.
    pub fn unlock_current(&self, pin: &Password) -> Result<TokenKey, TokenError> {
        let session = self.token.session(pin)?;
        let gens = self.generations(&session)?;
        let Some(current) = gens.iter().rev().find(|g| g.is_complete()) else {
            return Err(match gens.iter().rev().find(|g| g.has_key) {
                Some(g) => TokenError::CertificateMissing(self.uri(g.number)),
                None => self.no_key(),
            });
        };
        let label = self.label(current.number);
        let certificate = session.certificate(&label)?;
        let signer = session.signer(&label).map_err(|e| match e {
            TokenError::NoKey { .. } => self.no_key(),
            e => e,
        })?;
        let key = tresor_core::signer::KeySigner::public_key(&signer);
        if certificate
            .as_ref()
            .is_some_and(|cert| !tresor_pkcs11::certifies(cert, &key))
        {
            return Err(TokenError::CertificateForAnotherKey);
        }
        Ok(TokenKey {
            generation: current.number,
            signer: Arc::new(signer),
            certificate,
        })
    }

    /// The first key for this login on the token, refused where any is there already.
    pub fn create_first_key(&self, pin: &Password) -> Result<TokenPending, TokenError> {
        let session = self.token.session(pin)?;
        if !self.generations(&session)?.is_empty() {
            return Err(TokenError::KeyExists(self.login.to_string()));
        }
        self.generate(session)
    }

    /// Generates the next generation's key pair on the token (sensitive, never extractable)
    /// and its request, signed on the token. The current key is untouched.
    pub fn create_pending_key(&self, pin: &Password) -> Result<TokenPending, TokenError> {
        let session = self.token.session(pin)?;
        self.generate(session)
    }

    fn generate(&self, session: TokenSession) -> Result<TokenPending, TokenError> {
        let next = self
            .generations(&session)?
            .last()
            .map_or(1, |g| g.number.saturating_add(1));
        let signer = session.generate(&self.label(next))?;
        let public_key = tresor_core::signer::KeySigner::public_key(&signer);
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
        if !tresor_pkcs11::certifies(cert, &pending.public_key) {
            return Err(TokenError::CertificateForAnotherKey);
        }
        let session = self.token.session(pin)?;
        session.store_certificate(&self.label(pending.generation), cert)?;
        // Best effort: a failure here leaves extra objects, never a missing one.
        let _ = self.prune(&session);
        Ok(())
    }

    /// Removes complete generations beyond the current one and its backup, and pending
    /// keys older than the current one (the same rule as on a drive).
    fn prune(&self, session: &TokenSession) -> Result<(), TokenError> {
        let gens = self.generations(session)?;
        for g in keystore::stale_generations(&gens, KEEP_COMPLETE) {
            session.destroy(&self.label(g.number))?;
        }
        Ok(())
    }
}

/// How the app and the settings name a token as a key's medium: a PKCS#11 URI (RFC 7512)
/// by serial, which stays the same when the token is plugged into another port.
pub fn medium_of(token: &TokenInfo) -> String {
    format!("pkcs11:serial={}", tresor_pkcs11::uri_escape(&token.serial))
}

/// The token serial a medium names, if it names a token.
pub fn serial_of_medium(medium: &str) -> Option<String> {
    let attrs = medium.strip_prefix("pkcs11:")?;
    let value = attrs.split(';').find_map(|a| a.strip_prefix("serial="))?;
    unescape(value)
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A plugged-in token as the app lists it beside the drives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TokenView {
    /// What the token says of itself.
    pub token: TokenInfo,
    /// Its medium string ([`medium_of`]), which the flows take in place of a drive's path.
    pub medium: String,
    /// Whether it holds a certified key for the login asked about.
    pub has_key: bool,
}

/// The tokens plugged in now, each marked if it holds a key for `login`. No module
/// configured or installed is no token, not an error: most users have none.
pub fn list_tokens(
    module: Option<&std::path::Path>,
    login: Option<&Login>,
) -> Result<Vec<TokenView>, TokenError> {
    let module = match resolve_module(module) {
        Ok(path) => TokenModule::load(&path)?,
        Err(TokenError::NoModule) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for token in module.tokens()? {
        let has_key = login.is_some_and(|l| {
            TokenStore {
                token: module.token(token.clone()),
                login: l.clone(),
            }
            .has_key()
        });
        out.push(TokenView {
            medium: medium_of(&token),
            token,
            has_key,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_medium_names_its_serial_and_nothing_else_does() {
        let cases = [
            ("pkcs11:serial=5481c25f931f2f5c", Some("5481c25f931f2f5c")),
            ("pkcs11:token=T;serial=A%20B", Some("A B")),
            ("pkcs11:token=T", None),
            ("pkcs11:serial=%zz", None),
            ("/media/olena/STICK", None),
            ("", None),
        ];
        for (medium, serial) in cases {
            assert_eq!(serial_of_medium(medium).as_deref(), serial, "{medium}");
        }
    }
}
