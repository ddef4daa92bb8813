//! The data folder: the bank CA, the server's certificate and key, and the bank's secrets
//! (which seal stored sessions and anchor the audit chain). Created on first start; every
//! instance of one bank, and the admin CLI, read the same files.
//!
//! The keys are stored as plain PKCS#8 PEM, readable by the owner only: the folder is the
//! bank's trust anchor. The CA key may live in a PKCS#11 HSM instead (`[ca]` in the
//! configuration): the folder then holds only a reference to it (`bank-ca-key.pkcs11`: the
//! token and the key's label), and an instance without the HSM's PIN serves clients with
//! the CA certificate alone and cannot issue.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::sync::Arc;

use ring::hkdf;
use tresor_core::PrivateKey;
use tresor_core::secret::Password;
use tresor_pkcs11::TokenModule;

use crate::config::CaConfig;
use tresor_core::pki::{self, BankCa};
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::pem::{self, LineEnding};
use zeroize::Zeroizing;

/// The CA certificate clients must trust.
pub const CA_CERT: &str = "bank-ca.pem";
const CA_KEY: &str = "bank-ca-key.pem";
/// Where the CA key is when it lives in an HSM (not a secret: the token and the key's label).
const CA_KEY_REF: &str = "bank-ca-key.pkcs11";
/// The environment variable holding the HSM's PIN.
pub const CA_PIN_ENV: &str = "TRESOR_CA_PIN";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server-key.pem";
const SECRETS: &str = "secrets.key";

/// Validity of the server's TLS and channel certificate.
const SERVER_VALIDITY: Duration = Duration::from_secs(2 * 365 * 24 * 3600);

/// Why the data folder could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds something else than expected.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No bank lives in the folder.
    #[error(
        "{0} holds no Tresor bank (no bank-ca.pem); create one with `tresor-bank init`, or name \
         the right folder with --data"
    )]
    NoBank(PathBuf),
    /// A bank lives in the folder already.
    #[error("{0} already holds a Tresor bank; `init` creates only new ones")]
    Exists(PathBuf),
    /// Some files are there and some are missing: refuse to make a second CA.
    #[error(
        "the data folder {0} is incomplete: {1} is missing; restore it from a backup rather than \
         creating a new bank CA"
    )]
    Incomplete(PathBuf, &'static str),
    /// The HSM holding the CA key refused or could not be reached.
    #[error("the bank CA's HSM: {0}")]
    Hsm(#[from] tresor_pkcs11::TokenError),
    /// A file holding a secret (the HSM's PIN, the SMTP password) may be read by others.
    #[error(
        "{0} holds a secret (the HSM's PIN, the SMTP password) and may be read by others: make \
         it the bank user's alone (chmod 600)"
    )]
    SecretFileOpen(PathBuf),
}

/// The bank's keys and certificates.
pub struct BankFiles {
    /// The bank CA.
    pub ca: BankCa,
    /// The server's key (TLS and handshake signatures).
    pub server_key: PrivateKey,
    /// The server's certificate, from the bank CA, for serverAuth.
    pub server_cert: Certificate,
    /// Keys derived from the bank's secret.
    pub secrets: BankSecrets,
    /// Where the CA certificate is, for clients.
    pub ca_cert_path: PathBuf,
}

/// Keys derived from the 32-byte secret in the data folder.
pub struct BankSecrets {
    /// Seals stored session state (AES-256-GCM).
    pub session_key: Zeroizing<[u8; 32]>,
    /// Authenticates the audit chain: each record and its head (HMAC-SHA256).
    pub audit_key: Zeroizing<[u8; 32]>,
    /// Binds password hashes and session logins and seqs to this bank (HMAC-SHA256).
    pub binding_key: Zeroizing<[u8; 32]>,
    /// Seals TOTP secrets (AES-256-GCM).
    pub vault_key: Zeroizing<[u8; 32]>,
}

impl BankSecrets {
    /// Derives the keys from the bank's secret.
    pub fn derive(secret: &[u8; 32]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tresor bank secrets v1").extract(secret);
        let expand = |label: &'static [u8]| {
            let mut out = Zeroizing::new([0u8; 32]);
            let info = [label];
            // 32 bytes is within HKDF-SHA256's output limit.
            #[allow(clippy::expect_used)]
            prk.expand(&info, hkdf::HKDF_SHA256)
                .and_then(|okm| okm.fill(&mut *out))
                .expect("HKDF expand of 32 bytes");
            out
        };
        Self {
            session_key: expand(b"session state"),
            audit_key: expand(b"audit head"),
            binding_key: expand(b"row binding"),
            vault_key: expand(b"secret vault"),
        }
    }
}

/// Opens the data folder, creating the bank CA, the server certificate and the secret if
/// the folder is new. `hostnames` and `ips` go into a new server certificate.
pub fn open_or_create(
    dir: &Path,
    bank_name: &str,
    hostnames: &[String],
    ips: &[IpAddr],
    now: SystemTime,
    ca: &CaConfig,
) -> Result<BankFiles, DataError> {
    if !exists(dir) {
        create(dir, bank_name, hostnames, ips, now, ca)?;
    }
    let mut files = open(dir, ca)?;
    // A folder made before the secure channel had its own EKU: the server certificate is
    // issued again, for the same key, with it (clients now accept no other).
    if matches!(
        pki::validate_server_certificate(&files.server_cert, files.ca.certificate(), now),
        Err(tresor_core::pki::CertError::WrongPurpose)
    ) {
        let cert =
            server_certificate(&files.ca, &files.server_key, hostnames, ips, now).map_err(|e| {
                DataError::Invalid {
                    path: dir.join(SERVER_CERT),
                    message: e.to_string(),
                }
            })?;
        let pem = pki::certificate_to_pem(&cert).map_err(|e| DataError::Invalid {
            path: dir.join(SERVER_CERT),
            message: e.to_string(),
        })?;
        write_public(&dir.join(SERVER_CERT), pem.as_bytes())?;
        files.server_cert = cert;
    }
    Ok(files)
}

fn server_certificate(
    ca: &BankCa,
    key: &PrivateKey,
    hostnames: &[String],
    ips: &[IpAddr],
    now: SystemTime,
) -> Result<Certificate, pki::PkiError> {
    let mut names = vec!["localhost".to_string()];
    names.extend(hostnames.iter().cloned());
    ca.issue_server_certificate(&key.public_key(), &names, ips, now, SERVER_VALIDITY)
}

/// Issues a TLS certificate (serverAuth alone, never the channel's EKU) for a load balancer
/// that terminates TLS in front of the bank, for `dns_names` and `ips`, with a new key, and
/// writes both to `out` as HAProxy and nginx take them: the certificate, the bank CA's, then
/// the key (0600, replacing `out` atomically). The balancer can then carry clients' TLS but
/// never answer their secure channel.
pub fn write_proxy_certificate(
    ca: &BankCa,
    dns_names: &[String],
    ips: &[IpAddr],
    now: SystemTime,
    out: &Path,
) -> Result<Certificate, DataError> {
    let invalid = |message: String| DataError::Invalid {
        path: out.to_owned(),
        message,
    };
    if dns_names.is_empty() && ips.is_empty() {
        return Err(invalid(
            "name the balancer's host names (--dns) or addresses (--ip)".into(),
        ));
    }
    let key = PrivateKey::generate();
    let cert = ca
        .issue_proxy_certificate(&key.public_key(), dns_names, ips, now, SERVER_VALIDITY)
        .map_err(|e| invalid(e.to_string()))?;
    let pem = |c: &Certificate| pki::certificate_to_pem(c).map_err(|e| invalid(e.to_string()));
    let mut bundle = Zeroizing::new(pem(&cert)?);
    bundle.push_str(&pem(ca.certificate())?);
    bundle.push_str(&key_pem(&key));
    write_private(out, bundle.as_bytes())?;
    Ok(cert)
}

/// Whether `dir` holds any of a bank's files.
pub fn exists(dir: &Path) -> bool {
    [
        CA_CERT,
        CA_KEY,
        CA_KEY_REF,
        SERVER_CERT,
        SERVER_KEY,
        SECRETS,
    ]
    .iter()
    .any(|f| dir.join(f).exists())
}

/// Opens an existing data folder; creates nothing. A CA key in an HSM is opened when `ca`
/// gives the PIN; without it the CA verifies and does not issue.
pub fn open(dir: &Path, ca: &CaConfig) -> Result<BankFiles, DataError> {
    if !exists(dir) {
        return Err(DataError::NoBank(dir.to_owned()));
    }
    let key_file = if dir.join(CA_KEY_REF).exists() {
        CA_KEY_REF
    } else {
        CA_KEY
    };
    if let Some(missing) = [CA_CERT, key_file, SERVER_CERT, SERVER_KEY, SECRETS]
        .into_iter()
        .find(|f| !dir.join(f).exists())
    {
        return Err(DataError::Incomplete(dir.to_owned(), missing));
    }
    owner_only(dir)?;
    let ca_cert = read_cert(&dir.join(CA_CERT))?;
    let ca = if key_file == CA_KEY_REF {
        open_hsm_ca(dir, ca_cert, ca)?
    } else {
        let ca_key = read_key(&dir.join(CA_KEY))?;
        BankCa::from_parts(ca_cert, ca_key).map_err(|e| DataError::Invalid {
            path: dir.join(CA_KEY),
            message: e.to_string(),
        })?
    };
    let server_cert = read_cert(&dir.join(SERVER_CERT))?;
    let server_key = read_key(&dir.join(SERVER_KEY))?;
    server_key
        .check_matches(&server_cert)
        .map_err(|e| DataError::Invalid {
            path: dir.join(SERVER_KEY),
            message: e.to_string(),
        })?;
    pki::verify_signed_by(&server_cert, ca.certificate()).map_err(|e| DataError::Invalid {
        path: dir.join(SERVER_CERT),
        message: format!("not issued by the bank CA: {e}"),
    })?;
    let path = dir.join(SECRETS);
    let text = Zeroizing::new(read(&path)?);
    let mut secret = Zeroizing::new([0u8; 32]);
    let decoded = data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.trim_ascii().as_bytes())
        .ok()
        .filter(|d| d.len() == 32)
        .ok_or_else(|| DataError::Invalid {
            path: path.clone(),
            message: "expected 64 hex digits".into(),
        })?;
    secret.copy_from_slice(&decoded);
    Ok(BankFiles {
        ca,
        server_key,
        server_cert,
        secrets: BankSecrets::derive(&secret),
        ca_cert_path: dir.join(CA_CERT),
    })
}

fn create(
    dir: &Path,
    bank_name: &str,
    hostnames: &[String],
    ips: &[IpAddr],
    now: SystemTime,
    ca_config: &CaConfig,
) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
        path: dir.to_owned(),
        source,
    })?;
    owner_only(dir)?;
    let invalid = |path: &str, e: String| DataError::Invalid {
        path: dir.join(path),
        message: e,
    };
    let ca_name = format!("{bank_name} Client CA");
    let (ca, hsm_key) = match &ca_config.token {
        None => (
            BankCa::generate(&ca_name, bank_name, "UA", now, pki::DEFAULT_CA_VALIDITY)
                .map_err(|e| invalid(CA_CERT, e.to_string()))?,
            None,
        ),
        Some(which) => {
            let pin = ca_pin(ca_config)?.ok_or_else(|| {
                invalid(
                    CA_KEY_REF,
                    format!("creating the CA key in the HSM needs its PIN in {CA_PIN_ENV}"),
                )
            })?;
            let token = TokenModule::resolve(ca_config.pkcs11_module.as_deref())?.find(which)?;
            let label = format!(
                "Tresor bank CA {}",
                now.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            );
            let signer = token.session(&pin)?.generate(&label)?;
            let ca = BankCa::generate_with(
                Arc::new(signer),
                &ca_name,
                bank_name,
                "UA",
                now,
                pki::DEFAULT_CA_VALIDITY,
            )
            .map_err(|e| invalid(CA_CERT, e.to_string()))?;
            // The CA certificate beside its key, as the token's own tools expect.
            token
                .session(&pin)?
                .store_certificate(&label, ca.certificate())?;
            let reference = HsmKey {
                token: token.info().label.clone(),
                serial: token.info().serial.clone(),
                key: label,
            };
            (ca, Some(reference))
        }
    };
    let server_key = PrivateKey::generate();
    let server_cert = server_certificate(&ca, &server_key, hostnames, ips, now)
        .map_err(|e| invalid(SERVER_CERT, e.to_string()))?;
    let mut secret = Zeroizing::new([0u8; 32]);
    {
        use ring::rand::SecureRandom as _;
        ring::rand::SystemRandom::new()
            .fill(&mut *secret)
            .map_err(|_| invalid(SECRETS, "no randomness".into()))?;
    }
    // The secret and the keys first, the CA certificate last: a crash in between leaves an
    // incomplete folder, which is refused, never a CA certificate without its key.
    let hex = Zeroizing::new(data_encoding::HEXLOWER.encode(&*secret));
    write_private(&dir.join(SECRETS), hex.as_bytes())?;
    match (&hsm_key, ca.private_key()) {
        (Some(reference), _) => {
            let text =
                toml::to_string(reference).map_err(|e| invalid(CA_KEY_REF, e.to_string()))?;
            write_private(&dir.join(CA_KEY_REF), text.as_bytes())?;
        }
        (None, Some(key)) => write_private(&dir.join(CA_KEY), key_pem(key).as_bytes())?,
        (None, None) => {
            return Err(invalid(
                CA_KEY,
                "a CA generated here has its key in memory".into(),
            ));
        }
    }
    write_private(&dir.join(SERVER_KEY), key_pem(&server_key).as_bytes())?;
    let cert_pem = |c: &Certificate, name: &str| {
        pki::certificate_to_pem(c).map_err(|e| invalid(name, e.to_string()))
    };
    write_public(
        &dir.join(SERVER_CERT),
        cert_pem(&server_cert, SERVER_CERT)?.as_bytes(),
    )?;
    write_public(
        &dir.join(CA_CERT),
        cert_pem(ca.certificate(), CA_CERT)?.as_bytes(),
    )?;
    Ok(())
}

/// Where the CA key is in the HSM: what `bank-ca-key.pkcs11` says.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HsmKey {
    /// The token's label, for messages.
    token: String,
    /// The token's serial, which finds it.
    serial: String,
    /// The key pair's label on the token.
    key: String,
}

/// The CA of a folder whose key is in an HSM: signing there with the PIN, verify-only
/// without it.
fn open_hsm_ca(dir: &Path, cert: Certificate, config: &CaConfig) -> Result<BankCa, DataError> {
    let path = dir.join(CA_KEY_REF);
    let reference: HsmKey = toml::from_str(&read(&path)?).map_err(|e| DataError::Invalid {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let Some(pin) = ca_pin(config)? else {
        return Ok(BankCa::verify_only(cert));
    };
    let token = TokenModule::resolve(config.pkcs11_module.as_deref())?.find(&reference.serial)?;
    let signer = token.session(&pin)?.signer(&reference.key)?;
    BankCa::from_signer(cert, Arc::new(signer)).map_err(|e| DataError::Invalid {
        path,
        message: e.to_string(),
    })
}

/// The HSM's PIN: `TRESOR_CA_PIN`, else the PIN file (which others may not read), else none.
fn ca_pin(config: &CaConfig) -> Result<Option<Password>, DataError> {
    secret(CA_PIN_ENV, config.pin_file.as_deref())
}

/// A secret the configuration names: the environment variable `env`, else the file `file`
/// (which others may not read), else none. Never from the command line, where `ps` shows it.
pub fn secret(env: &str, file: Option<&Path>) -> Result<Option<Password>, DataError> {
    if let Some(value) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return Ok(Some(Password::new(value.to_string_lossy().into_owned())));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(|source| DataError::Io {
                path: path.to_owned(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(DataError::SecretFileOpen(path.to_owned()));
        }
    }
    let text = Zeroizing::new(read(path)?);
    Ok(Some(Password::new(
        text.trim_end_matches(['\r', '\n']).to_owned(),
    )))
}

fn key_pem(key: &PrivateKey) -> Zeroizing<String> {
    // Encoding DER we produced as PEM cannot fail.
    #[allow(clippy::expect_used)]
    Zeroizing::new(
        pem::encode_string("PRIVATE KEY", LineEnding::LF, &key.to_pkcs8_der())
            .expect("PEM encoding"),
    )
}

fn read(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_cert(path: &Path) -> Result<Certificate, DataError> {
    pki::certificate_from_pem(read(path)?.as_bytes()).map_err(|e| DataError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn read_key(path: &Path) -> Result<PrivateKey, DataError> {
    let text = Zeroizing::new(read(path)?);
    let invalid = |message: String| DataError::Invalid {
        path: path.to_owned(),
        message,
    };
    let (label, der) = pem::decode_vec(text.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let der = Zeroizing::new(der);
    if label != "PRIVATE KEY" {
        return Err(invalid(format!("expected a PRIVATE KEY, found {label}")));
    }
    PrivateKey::from_pkcs8_der(&der).map_err(|e| invalid(e.to_string()))
}

/// The data folder holds the bank's keys and database: its owner only may enter it (0700).
/// A folder an older version left open is tightened.
fn owner_only(dir: &Path) -> Result<(), DataError> {
    crate::files::owner_only(dir, 0o700).map_err(|source| DataError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    write_atomic(path, bytes, true)
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    write_atomic(path, bytes, false)
}

/// Writes a new file next to `path`, fsyncs it, renames it into place and fsyncs the folder.
fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), DataError> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_folder_gets_a_bank_and_reopens_to_the_same_one() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let a =
            open_or_create(dir.path(), "Test Bank", &[], &[], now, &CaConfig::default()).unwrap();
        let b =
            open_or_create(dir.path(), "Test Bank", &[], &[], now, &CaConfig::default()).unwrap();
        assert_eq!(a.ca.certificate(), b.ca.certificate());
        assert_eq!(*a.secrets.audit_key, *b.secrets.audit_key);
        assert_ne!(*a.secrets.audit_key, *a.secrets.session_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(CA_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "CA key readable by others: {mode:o}");
        }
    }

    #[test]
    fn an_incomplete_folder_is_refused_rather_than_given_a_second_ca() {
        let dir = tempfile::tempdir().unwrap();
        open_or_create(
            dir.path(),
            "Test Bank",
            &[],
            &[],
            SystemTime::now(),
            &CaConfig::default(),
        )
        .unwrap();
        std::fs::remove_file(dir.path().join(CA_KEY)).unwrap();
        let e = open_or_create(
            dir.path(),
            "Test Bank",
            &[],
            &[],
            SystemTime::now(),
            &CaConfig::default(),
        );
        assert!(matches!(e, Err(DataError::Incomplete(_, CA_KEY))));
    }

    #[cfg(unix)]
    #[test]
    fn a_pin_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pin");
        std::fs::write(&path, "246810\n").unwrap();
        let config = CaConfig {
            pin_file: Some(path.clone()),
            ..CaConfig::default()
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(ca_pin(&config), Err(DataError::SecretFileOpen(_))));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        // The environment wins where it is set (as the tests of the HSM set it).
        if std::env::var_os(CA_PIN_ENV).is_none() {
            assert_eq!(ca_pin(&config).unwrap().unwrap().expose(), "246810");
        }
        assert!(ca_pin(&CaConfig::default()).is_ok());
    }
}
