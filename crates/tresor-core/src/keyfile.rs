//! The key file: a P-256 private key as encrypted PKCS#8 PEM (`ENCRYPTED PRIVATE KEY`).
//!
//! Tresor writes PBES2 with scrypt (N=2^14, r=8, p=5: OWASP's equivalent of N=2^17, p=1,
//! at 16 MiB, which OpenSSL 3.0 can still open) and AES-256-CBC. It reads what OpenSSL
//! writes too: PBES2 with PBKDF2-HMAC-SHA-2 or scrypt, and AES-CBC or AES-GCM.
//!
//! Reading is ordered so that a hostile file costs nothing before it is trusted:
//! PEM label, then the DER structure, then the scheme, then the KDF parameters against
//! [`KdfLimits`], and only then the password is stretched. CBC has no integrity, so after
//! decrypting, the key's embedded public key is checked against the private scalar, and the
//! caller checks it against its certificate with [`PrivateKey::check_matches`].

use core::fmt;

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode, Reader, SliceReader};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use p256::{PublicKey, SecretKey};
use pkcs5::pbes2::{self, EncryptionScheme, Kdf, Pbkdf2Prf};
use pkcs8::PrivateKeyInfoRef;
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierRef, EncodePublicKey as _};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::secret::{Password, PasswordPolicyError};

/// PEM label of an encrypted PKCS#8 key.
pub const ENCRYPTED_KEY_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// scrypt parameters Tresor writes: log2(N), r, p.
pub const WRITE_SCRYPT: (u8, u32, u32) = (14, 8, 5);

const PBES2_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const PKCS5_PBES1_ARC: &str = "1.2.840.113549.1.5.";
const PKCS12_PBE_ARC: &str = "1.2.840.113549.1.12.1.";
const EC_PUBLIC_KEY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Caps on the cost of deriving a key from a password, checked before any derivation.
///
/// A key file is data from a drive that anyone may have written; without caps, a scrypt
/// N of 2^40 in the file would make the client allocate terabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfLimits {
    /// Most memory scrypt may use, `128 * r * (N + p)` bytes.
    pub max_scrypt_memory: u64,
    /// Most scrypt work, `N * r * p` (proportional to time).
    pub max_scrypt_work: u64,
    /// Most PBKDF2 iterations.
    pub max_pbkdf2_iterations: u32,
}

impl KdfLimits {
    /// The default caps: 256 MiB of memory, scrypt work of 2^23 (16 times OWASP's
    /// N=2^17, r=8, p=1; about two seconds on one core here), and 10,000,000 PBKDF2
    /// iterations (RFC 8018's figure for especially critical keys).
    pub const DEFAULT: Self = Self {
        max_scrypt_memory: 256 * 1024 * 1024,
        max_scrypt_work: 1 << 23,
        max_pbkdf2_iterations: 10_000_000,
    };
}

impl Default for KdfLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a key file could not be written or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The bytes are not a PEM document, or not a key.
    #[error("not a key file: {0}")]
    NotAKeyFile(String),
    /// A PEM file with a key, but not encrypted: Tresor refuses plain keys.
    #[error(
        "the key file is not encrypted (PEM label {0:?}); Tresor only uses password-protected keys"
    )]
    NotEncrypted(String),
    /// Encrypted with a scheme or cipher Tresor does not implement.
    #[error("unsupported key encryption: {0}")]
    UnsupportedScheme(String),
    /// The KDF parameters exceed [`KdfLimits`]; nothing was derived.
    #[error(
        "the key file asks for a key derivation that costs too much ({0}); refused before deriving"
    )]
    KdfTooExpensive(String),
    /// Decryption failed: the password is wrong, or the file was altered.
    #[error("wrong key password, or the key file is corrupted")]
    WrongPasswordOrCorrupted,
    /// The key decrypted, but it is not a P-256 EC key.
    #[error("the key is not a P-256 EC key ({0})")]
    UnsupportedKeyType(String),
    /// The key does not belong to the certificate stored beside it.
    #[error("the key does not match its certificate")]
    KeyCertificateMismatch,
    /// The password does not meet the policy for a new key.
    #[error(transparent)]
    WeakPassword(#[from] PasswordPolicyError),
    /// Encoding failed (an internal error, not bad input).
    #[error("could not encode the key: {0}")]
    Encode(String),
}

/// What a key file says about its own protection, read without the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileInfo {
    /// The key derivation, e.g. `scrypt N=16384 r=8 p=5`.
    pub kdf: String,
    /// The cipher, e.g. `AES-256-CBC`.
    pub cipher: &'static str,
}

/// A P-256 private key. The scalar is wiped on drop (by `p256`), and `Debug` shows only the
/// public key's fingerprint.
#[derive(Clone)]
pub struct PrivateKey {
    secret: SecretKey,
}

impl PrivateKey {
    /// Generates a new key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        loop {
            crate::fill_random(bytes.as_mut());
            // Rejection sampling: about one draw in 2^32 is out of range.
            if let Ok(secret) = SecretKey::from_slice(bytes.as_ref()) {
                return Self { secret };
            }
        }
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// An ECDSA-SHA256 signer for this key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from(&self.secret)
    }

    /// The key as plain PKCS#8 DER (with its public key, which ring requires), for loading
    /// into ring or rustls on the server. A client key never leaves the process.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        // Encoding a valid in-memory key into a Vec cannot fail.
        #[allow(clippy::expect_used)]
        let doc = self
            .secret
            .to_pkcs8_der()
            .expect("PKCS#8 encoding of a valid key");
        Zeroizing::new(doc.as_bytes().to_vec())
    }

    /// The inverse of [`to_pkcs8_der`](Self::to_pkcs8_der): a plain PKCS#8 P-256 key. Only
    /// for the bank server's own keys, which live in its data folder (a client key file is
    /// always encrypted: [`from_encrypted_pem`](Self::from_encrypted_pem)).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyFileError> {
        SecretKey::from_pkcs8_der(der)
            .map(|secret| Self { secret })
            .map_err(|e| KeyFileError::NotAKeyFile(e.to_string()))
    }

    /// The public key's fingerprint: `SHA256:` and the hex SHA-256 of its DER
    /// SubjectPublicKeyInfo, which `openssl pkey -pubout -outform DER | sha256sum` also gives.
    pub fn fingerprint(&self) -> String {
        public_key_fingerprint(&self.public_key())
    }

    /// Encrypts the key with `password` as Tresor's key file format, after checking the
    /// password against the new-key policy.
    pub fn to_encrypted_pem(&self, password: &Password) -> Result<Zeroizing<String>, KeyFileError> {
        password.check_new_key_password()?;
        let (log_n, r, p) = WRITE_SCRYPT;
        self.to_encrypted_pem_with(password, log_n, r, p)
    }

    /// Encrypts with explicit scrypt parameters and no password policy. For tests and
    /// benchmarks that need other costs; products use [`Self::to_encrypted_pem`].
    pub fn to_encrypted_pem_with(
        &self,
        password: &Password,
        log_n: u8,
        r: u32,
        p: u32,
    ) -> Result<Zeroizing<String>, KeyFileError> {
        let enc = |e: &dyn fmt::Display| KeyFileError::Encode(e.to_string());
        let params = pkcs5::scrypt::Params::new(log_n, r, p).map_err(|e| enc(&e))?;
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        crate::fill_random(&mut salt);
        crate::fill_random(&mut iv);
        let pbes2 =
            pbes2::Parameters::generate_scrypt_aes256cbc(params, &salt, iv).map_err(|e| enc(&e))?;
        let plain = self.secret.to_pkcs8_der().map_err(|e| enc(&e))?;
        let info = PrivateKeyInfoRef::from_der(plain.as_bytes()).map_err(|e| enc(&e))?;
        let encrypted = info
            .encrypt_with_params(pbes2, password.as_bytes())
            .map_err(|e| enc(&e))?;
        encrypted
            .to_pem(ENCRYPTED_KEY_LABEL, der::pem::LineEnding::LF)
            .map_err(|e| enc(&e))
    }

    /// Opens an encrypted PKCS#8 PEM key file.
    pub fn from_encrypted_pem(
        pem: &[u8],
        password: &Password,
        limits: &KdfLimits,
    ) -> Result<Self, KeyFileError> {
        let Parsed { der, params, data } = parse_encrypted(pem)?;
        check_limits(&params, limits)?;
        let ciphertext = &der[data];
        let plain = Zeroizing::new(params.decrypt(password.as_bytes(), ciphertext).map_err(
            |e| match e {
                pkcs5::Error::DecryptFailed => KeyFileError::WrongPasswordOrCorrupted,
                other => KeyFileError::UnsupportedScheme(other.to_string()),
            },
        )?);
        // Plaintext that passed the padding check by chance is not DER: same error.
        let info = PrivateKeyInfoRef::from_der(&plain)
            .map_err(|_| KeyFileError::WrongPasswordOrCorrupted)?;
        if info.algorithm.oid != EC_PUBLIC_KEY_OID {
            return Err(KeyFileError::UnsupportedKeyType(format!(
                "algorithm {}",
                info.algorithm.oid
            )));
        }
        match info.algorithm.parameters_oid() {
            Ok(curve) if curve == P256_OID => {}
            Ok(curve) => return Err(KeyFileError::UnsupportedKeyType(format!("curve {curve}"))),
            Err(_) => {
                return Err(KeyFileError::UnsupportedKeyType("no named curve".into()));
            }
        }
        // `SecretKey::try_from` also checks an embedded public key against the scalar.
        let secret = SecretKey::from_pkcs8_der(&plain)
            .map_err(|_| KeyFileError::WrongPasswordOrCorrupted)?;
        Ok(Self { secret })
    }

    /// Checks that `cert` certifies this key. Needed because AES-CBC has no integrity: a file
    /// altered on the drive could decrypt to some other valid key.
    pub fn check_matches(&self, cert: &Certificate) -> Result<(), KeyFileError> {
        let ours = self
            .public_key()
            .to_public_key_der()
            .map_err(|e| KeyFileError::Encode(e.to_string()))?;
        let theirs = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| KeyFileError::Encode(e.to_string()))?;
        if ours.as_bytes() == theirs.as_slice() {
            Ok(())
        } else {
            Err(KeyFileError::KeyCertificateMismatch)
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.fingerprint())
    }
}

/// `SHA256:<hex>` over the DER SubjectPublicKeyInfo of a P-256 public key.
pub fn public_key_fingerprint(key: &PublicKey) -> String {
    match key.to_public_key_der() {
        Ok(der) => {
            let digest = Sha256::digest(der.as_bytes());
            let mut out = String::with_capacity(7 + 64);
            out.push_str("SHA256:");
            for b in digest.iter() {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
        // A valid P-256 point always encodes; keep the function total all the same.
        Err(_) => "SHA256:?".to_owned(),
    }
}

/// Reads the protection of a key file without its password.
pub fn inspect(pem: &[u8]) -> Result<KeyFileInfo, KeyFileError> {
    let params = parse_encrypted(pem)?.params;
    let kdf = match &params.kdf {
        Kdf::Pbkdf2(p) => format!(
            "PBKDF2-{} iterations={}",
            prf_name(p.prf),
            p.iteration_count
        ),
        Kdf::Scrypt(s) => format!(
            "scrypt N={} r={} p={}",
            s.cost_parameter, s.block_size, s.parallelization
        ),
        _ => "unknown".to_owned(),
    };
    Ok(KeyFileInfo {
        kdf,
        cipher: cipher_name(&params.encryption),
    })
}

fn prf_name(prf: Pbkdf2Prf) -> &'static str {
    match prf {
        Pbkdf2Prf::HmacWithSha1 => "HMAC-SHA1",
        Pbkdf2Prf::HmacWithSha224 => "HMAC-SHA224",
        Pbkdf2Prf::HmacWithSha256 => "HMAC-SHA256",
        Pbkdf2Prf::HmacWithSha384 => "HMAC-SHA384",
        Pbkdf2Prf::HmacWithSha512 => "HMAC-SHA512",
        _ => "HMAC-?",
    }
}

fn cipher_name(scheme: &EncryptionScheme) -> &'static str {
    match scheme {
        EncryptionScheme::Aes128Cbc { .. } => "AES-128-CBC",
        EncryptionScheme::Aes192Cbc { .. } => "AES-192-CBC",
        EncryptionScheme::Aes256Cbc { .. } => "AES-256-CBC",
        EncryptionScheme::Aes128Gcm { .. } => "AES-128-GCM",
        EncryptionScheme::Aes256Gcm { .. } => "AES-256-GCM",
        _ => "unknown",
    }
}

/// An encrypted key file, parsed but not decrypted.
struct Parsed {
    der: Zeroizing<Vec<u8>>,
    params: pbes2::Parameters,
    /// Where the ciphertext is in `der`.
    data: core::ops::Range<usize>,
}

/// PEM → DER → PBES2 parameters, with the byte range of the ciphertext in the DER.
fn parse_encrypted(pem: &[u8]) -> Result<Parsed, KeyFileError> {
    let (label, der) = der::pem::decode_vec(pem)
        .map_err(|e| KeyFileError::NotAKeyFile(format!("not a PEM document ({e})")))?;
    let der = Zeroizing::new(der);
    match label {
        ENCRYPTED_KEY_LABEL => {}
        "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
            return Err(KeyFileError::NotEncrypted(label.to_owned()));
        }
        other => {
            return Err(KeyFileError::NotAKeyFile(format!(
                "PEM label is {other:?}, expected {ENCRYPTED_KEY_LABEL:?}"
            )));
        }
    }
    let malformed = |e: der::Error| {
        KeyFileError::NotAKeyFile(format!("malformed EncryptedPrivateKeyInfo ({e})"))
    };
    // Decode the outer structure generically first, so that an unknown scheme is told
    // apart from a broken file.
    let mut reader = SliceReader::new(&der).map_err(malformed)?;
    let (algorithm, data): (AlgorithmIdentifierRef<'_>, &OctetStringRef) = reader
        .sequence(|r: &mut SliceReader<'_>| {
            let alg = AlgorithmIdentifierRef::decode(r)?;
            let data = <&OctetStringRef>::decode(r)?;
            Ok((alg, data))
        })
        .map_err(malformed)?;
    reader.finish().map_err(malformed)?;

    if algorithm.oid != PBES2_OID {
        let oid = algorithm.oid.to_string();
        let what = if oid.starts_with(PKCS5_PBES1_ARC) || oid.starts_with(PKCS12_PBE_ARC) {
            format!("legacy PBES1/PKCS#12 encryption ({oid}); re-encrypt with PBES2")
        } else {
            format!("encryption algorithm {oid}")
        };
        return Err(KeyFileError::UnsupportedScheme(what));
    }
    let any: AnyRef<'_> = algorithm
        .parameters
        .ok_or_else(|| KeyFileError::NotAKeyFile("PBES2 without parameters".into()))?;
    let params = pbes2::Parameters::try_from(any).map_err(|e| {
        KeyFileError::UnsupportedScheme(format!(
            "PBES2 with a KDF or cipher Tresor does not support ({e})"
        ))
    })?;

    // Locate the ciphertext inside `der` (it is a sub-slice of it).
    let start = data.as_bytes().as_ptr() as usize - der.as_ptr() as usize;
    let data = start..start + data.as_bytes().len();
    Ok(Parsed { der, params, data })
}

fn check_limits(params: &pbes2::Parameters, limits: &KdfLimits) -> Result<(), KeyFileError> {
    let key_size = params.encryption.key_size();
    match &params.kdf {
        Kdf::Pbkdf2(p) => {
            match p.prf {
                Pbkdf2Prf::HmacWithSha224
                | Pbkdf2Prf::HmacWithSha256
                | Pbkdf2Prf::HmacWithSha384
                | Pbkdf2Prf::HmacWithSha512 => {}
                other => {
                    return Err(KeyFileError::UnsupportedScheme(format!(
                        "PBKDF2 with {} (too weak)",
                        prf_name(other)
                    )));
                }
            }
            if p.iteration_count == 0 {
                return Err(KeyFileError::NotAKeyFile(
                    "PBKDF2 with zero iterations".into(),
                ));
            }
            if p.iteration_count > limits.max_pbkdf2_iterations {
                return Err(KeyFileError::KdfTooExpensive(format!(
                    "PBKDF2 iterations {} > {}",
                    p.iteration_count, limits.max_pbkdf2_iterations
                )));
            }
            check_key_length(p.key_length, key_size)?;
        }
        Kdf::Scrypt(s) => {
            let n = s.cost_parameter;
            let r = u64::from(s.block_size);
            let p = u64::from(s.parallelization);
            if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 {
                return Err(KeyFileError::NotAKeyFile(format!(
                    "invalid scrypt parameters N={n} r={r} p={p}"
                )));
            }
            let memory = n
                .checked_add(p)
                .and_then(|np| np.checked_mul(r))
                .and_then(|x| x.checked_mul(128));
            match memory {
                Some(m) if m <= limits.max_scrypt_memory => {}
                _ => {
                    return Err(KeyFileError::KdfTooExpensive(format!(
                        "scrypt N={n} r={r} p={p} needs more than {} MiB",
                        limits.max_scrypt_memory / (1024 * 1024)
                    )));
                }
            }
            let work = n.checked_mul(r).and_then(|x| x.checked_mul(p));
            match work {
                Some(w) if w <= limits.max_scrypt_work => {}
                _ => {
                    return Err(KeyFileError::KdfTooExpensive(format!(
                        "scrypt N={n} r={r} p={p}: work N*r*p above {}",
                        limits.max_scrypt_work
                    )));
                }
            }
            check_key_length(s.key_length, key_size)?;
        }
        _ => return Err(KeyFileError::UnsupportedScheme("unknown KDF".into())),
    }
    Ok(())
}

fn check_key_length(declared: Option<u16>, cipher_key: usize) -> Result<(), KeyFileError> {
    match declared {
        Some(len) if usize::from(len) != cipher_key => Err(KeyFileError::NotAKeyFile(format!(
            "KDF key length {len} does not fit the cipher's {cipher_key}"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::from(s)
    }

    /// A cheap key file for tests that do not measure the KDF.
    fn cheap_pem(key: &PrivateKey, password: &str) -> Zeroizing<String> {
        key.to_encrypted_pem_with(&pw(password), 10, 8, 1).unwrap()
    }

    #[test]
    fn round_trip_with_default_parameters() {
        let key = PrivateKey::generate();
        let pem = key.to_encrypted_pem(&pw("correct horse")).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        let info = inspect(pem.as_bytes()).unwrap();
        assert_eq!(info.kdf, "scrypt N=16384 r=8 p=5");
        assert_eq!(info.cipher, "AES-256-CBC");
        let back = PrivateKey::from_encrypted_pem(
            pem.as_bytes(),
            &pw("correct horse"),
            &KdfLimits::DEFAULT,
        )
        .unwrap();
        assert_eq!(back.public_key(), key.public_key());
    }

    #[test]
    fn weak_password_is_refused_for_a_new_key() {
        let key = PrivateKey::generate();
        assert!(matches!(
            key.to_encrypted_pem(&pw("1234567")),
            Err(KeyFileError::WeakPassword(PasswordPolicyError::TooShort))
        ));
    }

    #[test]
    fn wrong_password() {
        let key = PrivateKey::generate();
        let pem = cheap_pem(&key, "right password");
        for wrong in ["wrong password", "", "right passworD"] {
            assert!(matches!(
                PrivateKey::from_encrypted_pem(pem.as_bytes(), &pw(wrong), &KdfLimits::DEFAULT),
                Err(KeyFileError::WrongPasswordOrCorrupted)
            ));
        }
    }

    #[test]
    fn kdf_bomb_is_refused_before_deriving() {
        let key = PrivateKey::generate();
        // N=2^14, r=8 needs 16 MiB: over a cap of 8 MiB, and over a work cap of 2^16.
        let pem = key
            .to_encrypted_pem_with(&pw("password1"), 14, 8, 1)
            .unwrap();
        let tight = KdfLimits {
            max_scrypt_memory: 8 * 1024 * 1024,
            ..KdfLimits::DEFAULT
        };
        assert!(matches!(
            PrivateKey::from_encrypted_pem(pem.as_bytes(), &pw("password1"), &tight),
            Err(KeyFileError::KdfTooExpensive(_))
        ));
        let slow = KdfLimits {
            max_scrypt_work: 1 << 16,
            ..KdfLimits::DEFAULT
        };
        assert!(matches!(
            PrivateKey::from_encrypted_pem(pem.as_bytes(), &pw("password1"), &slow),
            Err(KeyFileError::KdfTooExpensive(_))
        ));
    }

    #[test]
    fn hostile_scrypt_n_is_refused_without_allocating() {
        let params = pbes2::Parameters {
            kdf: Kdf::Scrypt(pbes2::ScryptParams {
                salt: [7u8; 16].as_slice().try_into().unwrap(),
                cost_parameter: 1 << 40,
                block_size: 8,
                parallelization: 1,
                key_length: None,
            }),
            encryption: EncryptionScheme::Aes256Cbc { iv: [1; 16] },
        };
        let epki = pkcs8::EncryptedPrivateKeyInfoRef {
            encryption_algorithm: params.into(),
            encrypted_data: OctetStringRef::new(&[0u8; 144]).unwrap(),
        };
        let der = epki.to_der().unwrap();
        let pem =
            der::pem::encode_string(ENCRYPTED_KEY_LABEL, der::pem::LineEnding::LF, &der).unwrap();
        let err = PrivateKey::from_encrypted_pem(pem.as_bytes(), &pw("x"), &KdfLimits::DEFAULT)
            .unwrap_err();
        assert!(matches!(err, KeyFileError::KdfTooExpensive(_)), "{err}");
        assert!(err.to_string().contains("N=1099511627776"), "{err}");
    }

    #[test]
    fn labels() {
        let key = PrivateKey::generate();
        let plain = key.secret.to_pkcs8_pem(der::pem::LineEnding::LF).unwrap();
        assert!(matches!(
            PrivateKey::from_encrypted_pem(plain.as_bytes(), &pw("x"), &KdfLimits::DEFAULT),
            Err(KeyFileError::NotEncrypted(label)) if label == "PRIVATE KEY"
        ));
        let cert = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            PrivateKey::from_encrypted_pem(cert.as_bytes(), &pw("x"), &KdfLimits::DEFAULT),
            Err(KeyFileError::NotAKeyFile(_))
        ));
    }

    #[test]
    fn fingerprint_is_stable_and_distinct() {
        let a = PrivateKey::generate();
        let b = PrivateKey::generate();
        assert_eq!(a.fingerprint(), a.fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 7 + 64);
        assert!(!format!("{a:?}").contains(&format!("{:?}", a.secret.to_bytes())));
    }
}
