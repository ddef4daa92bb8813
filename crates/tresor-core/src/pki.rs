//! The bank's PKI: certificate requests, the bank CA, and client certificates.
//!
//! Every certificate here is ECDSA P-256 with SHA-256. The CA never copies what a request
//! asks for: a client certificate's subject and extensions come from the CA's own profile,
//! and only the request's public key (after its signature is checked) is taken.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use const_oid::db::{rfc5280, rfc5912};
use der::asn1::{Ia5String, OctetString};
use der::{Decode, DecodePem, Encode, EncodePem};
use p256::PublicKey;
use p256::ecdsa::{Signature, VerifyingKey, signature::Verifier as _};
use spki::{DecodePublicKey as _, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::Certificate;
use x509_cert::builder::CertificateBuilder;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension as _};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, RequestBuilder};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::keyfile::PrivateKey;
use crate::signer::{BuildError, KeySigner, SignError, build_signed};

/// Extended key usage of the certificate that speaks for the bank inside the secure channel
/// (docs/PROTOCOL.md §6): a client accepts no other as the channel's server, so a certificate
/// the bank CA issued for TLS alone (say, to a TLS-terminating proxy) cannot terminate the
/// inner channel too. The arc is the project's own (see docs/THREAT_MODEL.md).
pub const ID_KP_TRESOR_CHANNEL: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.61593.1.1");
use crate::login::{Login, LoginError};

/// Extended key usage of a bank admin's certificate, in place of clientAuth: an admin's key
/// opens only admin sessions and a client's key only client sessions, because the CA-signed
/// certificate says which, not a row in the database.
pub const ID_KP_TRESOR_ADMIN: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.61593.1.2");

/// Whose key a certificate certifies: a bank client's or a bank admin's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// A client (EKU clientAuth).
    Client,
    /// A bank admin (EKU [`ID_KP_TRESOR_ADMIN`]).
    Admin,
}

impl CertKind {
    fn eku(self) -> der::asn1::ObjectIdentifier {
        match self {
            Self::Client => rfc5280::ID_KP_CLIENT_AUTH,
            Self::Admin => ID_KP_TRESOR_ADMIN,
        }
    }

    /// `client` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Admin => "admin",
        }
    }
}

/// Default lifetime of a client certificate.
pub const DEFAULT_CLIENT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Default lifetime of the bank CA.
pub const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Clock skew tolerated by issuance: `notBefore` is set this far in the past.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Why a request or certificate was refused, or could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// Not PEM/DER of the expected kind.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// The decoder's words.
        detail: String,
    },
    /// Signed with something other than ECDSA P-256 with SHA-256.
    #[error("unsupported algorithm in {0}: Tresor uses ECDSA P-256 with SHA-256")]
    UnsupportedAlgorithm(&'static str),
    /// The request's signature does not verify with the key inside it.
    #[error("the certificate request's signature is invalid")]
    BadRequestSignature,
    /// The request's subject is not a login, or not the expected one.
    #[error("the certificate request is for {found:?}, expected {expected:?}")]
    RequestForAnotherLogin {
        /// Login the CA was asked to certify.
        expected: String,
        /// Subject found in the request.
        found: String,
    },
    /// The subject is not a valid login.
    #[error("the subject is not a valid login: {0}")]
    BadLogin(#[from] LoginError),
    /// Building or signing a certificate failed (an internal error).
    #[error("could not build the certificate: {0}")]
    Build(String),
    /// The key (on a token) did not sign.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// This instance holds the CA certificate only: the CA key (a file or an HSM) is
    /// configured where certificates are issued.
    #[error(
        "this bank instance holds no CA key and cannot issue certificates: configure the CA \
         key (its HSM and PIN) on it"
    )]
    NoCaKey,
}

impl From<BuildError> for PkiError {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::Build(detail) => Self::Build(detail),
            BuildError::Sign(e) => Self::Sign(e),
        }
    }
}

/// Why a client certificate is not accepted for a login.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The certificate could not be parsed.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// Not issued (or not validly signed) by the bank CA.
    #[error("the certificate was not issued by this bank's CA")]
    NotIssuedByBank,
    /// Now is before `notBefore`.
    #[error("the certificate is not valid yet")]
    NotYetValid,
    /// Now is after `notAfter`.
    #[error("the certificate has expired")]
    Expired,
    /// A CA certificate, or one without the digitalSignature key usage.
    #[error("the certificate is not meant for signing by a client")]
    WrongKeyUsage,
    /// No clientAuth (or admin) extended key usage, or both.
    #[error("the certificate is not meant for client authentication")]
    WrongPurpose,
    /// Issued to someone else.
    #[error("the certificate belongs to {found:?}, not {expected:?}")]
    WrongLogin {
        /// Login that tried to use it.
        expected: String,
        /// Login it was issued to.
        found: String,
    },
    /// A critical extension this validator does not know.
    #[error("the certificate has an unknown critical extension {0}")]
    UnknownCriticalExtension(String),
    /// Revoked by the bank.
    #[error("the certificate has been revoked")]
    Revoked,
    /// Issued, but the bank has not activated it from its key letter yet.
    #[error(
        "the certificate is not activated yet: the bank activates it from the signed key letter"
    )]
    NotActivated,
}

/// Answers whether the bank revoked a certificate. The server backs it with its database.
pub trait RevocationCheck {
    /// True if the certificate with this serial, issued by the bank CA, is revoked.
    fn is_revoked(&self, serial: &SerialNumber) -> bool;
}

impl<F: Fn(&SerialNumber) -> bool> RevocationCheck for F {
    fn is_revoked(&self, serial: &SerialNumber) -> bool {
        self(serial)
    }
}

/// For a client that has no revocation list: it leaves revocation to the server.
#[derive(Debug, Clone, Copy)]
pub struct NoRevocationList;

impl RevocationCheck for NoRevocationList {
    fn is_revoked(&self, _: &SerialNumber) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Requests.

/// A PKCS#10 request whose signature was checked and whose subject is a login.
#[derive(Debug, Clone)]
pub struct VerifiedCsr {
    login: Login,
    spki: SubjectPublicKeyInfoOwned,
    public_key: PublicKey,
}

impl VerifiedCsr {
    /// The login named in the subject.
    pub fn login(&self) -> &Login {
        &self.login
    }

    /// The key to certify.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
}

/// Builds a request for `login`'s new key, signed by that key.
pub fn build_csr(key: &PrivateKey, login: &Login) -> Result<CertReq, PkiError> {
    build_csr_with(key, login)
}

/// [`build_csr`] for a key wherever it lives (a token signs its own request).
pub fn build_csr_with(key: &dyn KeySigner, login: &Login) -> Result<CertReq, PkiError> {
    let subject = login_name(login)?;
    let builder = RequestBuilder::new(subject).map_err(build_err)?;
    Ok(build_signed(builder, key)?)
}

/// Encodes a request as PEM.
pub fn csr_to_pem(csr: &CertReq) -> Result<String, PkiError> {
    csr.to_pem(der::pem::LineEnding::LF).map_err(build_err)
}

/// Parses a DER request, checks its signature with the key it carries (x509-cert does not),
/// and reads the login from its subject.
pub fn verify_csr(der: &[u8]) -> Result<VerifiedCsr, PkiError> {
    let csr = CertReq::from_der(der).map_err(|e| malformed("certificate request", e))?;
    if csr.algorithm.oid != rfc5912::ECDSA_WITH_SHA_256 || csr.algorithm.parameters.is_some() {
        return Err(PkiError::UnsupportedAlgorithm("certificate request"));
    }
    let public_key = p256_key(&csr.info.public_key)
        .ok_or(PkiError::UnsupportedAlgorithm("certificate request's key"))?;
    let info = csr
        .info
        .to_der()
        .map_err(|e| malformed("certificate request", e))?;
    let sig_bytes = csr
        .signature
        .as_bytes()
        .ok_or(PkiError::BadRequestSignature)?;
    let sig = Signature::from_der(sig_bytes).map_err(|_| PkiError::BadRequestSignature)?;
    VerifyingKey::from(&public_key)
        .verify(&info, &sig)
        .map_err(|_| PkiError::BadRequestSignature)?;
    let login = login_from_name(&csr.info.subject)?;
    Ok(VerifiedCsr {
        login,
        spki: csr.info.public_key,
        public_key,
    })
}

/// [`verify_csr`] on PEM.
pub fn verify_csr_pem(pem: &[u8]) -> Result<VerifiedCsr, PkiError> {
    let (label, der) =
        der::pem::decode_vec(pem).map_err(|e| malformed("certificate request", e))?;
    if label != "CERTIFICATE REQUEST" {
        return Err(PkiError::Malformed {
            what: "certificate request",
            detail: format!("PEM label is {label:?}"),
        });
    }
    verify_csr(&der)
}

// ---------------------------------------------------------------------------------------------
// The CA.

/// The bank's certificate authority: its self-signed certificate and its signing key, in
/// memory (from the data folder) or in a hardware security module.
#[derive(Clone)]
pub struct BankCa {
    cert: Certificate,
    key: CaKey,
}

#[derive(Clone)]
enum CaKey {
    File(PrivateKey),
    External(Arc<dyn KeySigner>),
    /// Verify only: an instance that serves clients without the CA key.
    Absent,
}

impl CaKey {
    fn signer(&self) -> Result<&dyn KeySigner, PkiError> {
        match self {
            Self::File(key) => Ok(key),
            Self::External(signer) => Ok(signer.as_ref()),
            Self::Absent => Err(PkiError::NoCaKey),
        }
    }
}

impl fmt::Debug for BankCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankCa")
            .field(
                "subject",
                &self.cert.tbs_certificate().subject().to_string(),
            )
            .finish_non_exhaustive()
    }
}

impl BankCa {
    /// Creates a new CA named `CN=<common_name>, O=<organization>, C=<country>`.
    pub fn generate(
        common_name: &str,
        organization: &str,
        country: &str,
        now: SystemTime,
        validity: Duration,
    ) -> Result<Self, PkiError> {
        Self::self_signed(
            CaKey::File(PrivateKey::generate()),
            common_name,
            organization,
            country,
            now,
            validity,
        )
    }

    /// Creates a new CA whose key lives outside the process (an HSM): the certificate is
    /// signed by `signer`, and so is everything the CA issues.
    pub fn generate_with(
        signer: Arc<dyn KeySigner>,
        common_name: &str,
        organization: &str,
        country: &str,
        now: SystemTime,
        validity: Duration,
    ) -> Result<Self, PkiError> {
        Self::self_signed(
            CaKey::External(signer),
            common_name,
            organization,
            country,
            now,
            validity,
        )
    }

    fn self_signed(
        key: CaKey,
        common_name: &str,
        organization: &str,
        country: &str,
        now: SystemTime,
        validity: Duration,
    ) -> Result<Self, PkiError> {
        let subject = Name::from_str(&format!(
            "CN={},O={},C={}",
            escape_rdn(common_name),
            escape_rdn(organization),
            escape_rdn(country)
        ))
        .map_err(build_err)?;
        let profile = CaProfile { subject };
        let spki = spki_of(&key.signer()?.public_key())?;
        let builder = CertificateBuilder::new(
            profile,
            random_serial()?,
            validity_from(now, validity)?,
            spki,
        )
        .map_err(build_err)?;
        let cert = build_signed(builder, key.signer()?)?;
        Ok(Self { cert, key })
    }

    /// Rebuilds a CA whose key lives outside the process, checking that `signer` holds the
    /// key of `cert`.
    pub fn from_signer(cert: Certificate, signer: Arc<dyn KeySigner>) -> Result<Self, PkiError> {
        if spki_of(&signer.public_key())? != *cert.tbs_certificate().subject_public_key_info() {
            return Err(PkiError::Build(
                "the CA key does not match the CA certificate".into(),
            ));
        }
        Ok(Self {
            cert,
            key: CaKey::External(signer),
        })
    }

    /// Rebuilds the CA from its stored certificate and key, checking that they belong together.
    pub fn from_parts(cert: Certificate, key: PrivateKey) -> Result<Self, PkiError> {
        key.check_matches(&cert)
            .map_err(|e| PkiError::Build(e.to_string()))?;
        Ok(Self {
            cert,
            key: CaKey::File(key),
        })
    }

    /// The CA certificate alone: it verifies, and refuses to issue ([`PkiError::NoCaKey`]).
    pub fn verify_only(cert: Certificate) -> Self {
        Self {
            cert,
            key: CaKey::Absent,
        }
    }

    /// Whether this CA can issue (it holds its key, in memory or through an HSM).
    pub fn can_issue(&self) -> bool {
        !matches!(self.key, CaKey::Absent)
    }

    /// The CA certificate, which clients trust.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The CA's private key, for storing it; `None` when it lives in an HSM.
    pub fn private_key(&self) -> Option<&PrivateKey> {
        match &self.key {
            CaKey::File(key) => Some(key),
            CaKey::External(_) | CaKey::Absent => None,
        }
    }

    /// Issues a client certificate for a verified request, if the request names `login`.
    ///
    /// The certificate carries `CN=<login>`, CA:FALSE, key usage digitalSignature (critical),
    /// extended key usage clientAuth, SKI and AKI, and a random 128-bit serial. Nothing
    /// requested in the CSR besides its public key is used.
    pub fn issue_client_certificate(
        &self,
        csr: &VerifiedCsr,
        login: &Login,
        now: SystemTime,
        validity: Duration,
    ) -> Result<Certificate, PkiError> {
        self.issue_certificate(csr, login, CertKind::Client, now, validity)
    }

    /// Issues a client's or an admin's certificate: as [`issue_client_certificate`]
    /// (Self::issue_client_certificate), with the extended key usage of `kind` alone.
    pub fn issue_certificate(
        &self,
        csr: &VerifiedCsr,
        login: &Login,
        kind: CertKind,
        now: SystemTime,
        validity: Duration,
    ) -> Result<Certificate, PkiError> {
        if csr.login() != login {
            return Err(PkiError::RequestForAnotherLogin {
                expected: login.to_string(),
                found: csr.login().to_string(),
            });
        }
        let profile = LeafProfile {
            issuer: self.cert.tbs_certificate().subject().clone(),
            subject: login_name(login)?,
            purpose: Purpose::Client(kind),
        };
        self.sign_leaf(profile, csr.spki.clone(), now, validity)
    }

    /// Issues the bank server's certificate for its DNS names and IP addresses, for TLS
    /// (serverAuth) and for the secure channel ([`ID_KP_TRESOR_CHANNEL`]): the server uses
    /// the same key to sign its side of Tresor's handshake.
    pub fn issue_server_certificate(
        &self,
        server_key: &PublicKey,
        dns_names: &[String],
        ips: &[IpAddr],
        now: SystemTime,
        validity: Duration,
    ) -> Result<Certificate, PkiError> {
        self.issue_tls_certificate(server_key, dns_names, ips, now, validity, true)
    }

    /// Issues a certificate for TLS alone (serverAuth), as for a TLS-terminating proxy in
    /// front of the bank: it may carry the outer connection, never the secure channel.
    pub fn issue_proxy_certificate(
        &self,
        key: &PublicKey,
        dns_names: &[String],
        ips: &[IpAddr],
        now: SystemTime,
        validity: Duration,
    ) -> Result<Certificate, PkiError> {
        self.issue_tls_certificate(key, dns_names, ips, now, validity, false)
    }

    fn issue_tls_certificate(
        &self,
        server_key: &PublicKey,
        dns_names: &[String],
        ips: &[IpAddr],
        now: SystemTime,
        validity: Duration,
        channel: bool,
    ) -> Result<Certificate, PkiError> {
        let mut names = Vec::new();
        for dns in dns_names {
            names.push(GeneralName::DnsName(
                Ia5String::new(dns).map_err(|e| malformed("DNS name", e))?,
            ));
        }
        for ip in ips {
            let bytes = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            names.push(GeneralName::IpAddress(
                OctetString::new(bytes).map_err(build_err)?,
            ));
        }
        let cn = dns_names
            .first()
            .map(String::as_str)
            .unwrap_or("tresor-bank");
        let profile = LeafProfile {
            issuer: self.cert.tbs_certificate().subject().clone(),
            subject: Name::from_str(&format!("CN={}", escape_rdn(cn))).map_err(build_err)?,
            purpose: Purpose::Server(names, channel),
        };
        self.sign_leaf(profile, spki_of(server_key)?, now, validity)
    }

    fn sign_leaf(
        &self,
        profile: LeafProfile,
        spki: SubjectPublicKeyInfoOwned,
        now: SystemTime,
        validity: Duration,
    ) -> Result<Certificate, PkiError> {
        let builder = CertificateBuilder::new(
            profile,
            random_serial()?,
            validity_from(now, validity)?,
            spki,
        )
        .map_err(build_err)?;
        Ok(build_signed(builder, self.key.signer()?)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// A client certificate that passed [`validate_client_certificate`].
#[derive(Debug, Clone)]
pub struct ValidatedClientCert {
    /// The login it is bound to.
    pub login: Login,
    /// Its serial number.
    pub serial: SerialNumber,
    /// The key it certifies, for checking the client's signatures.
    pub public_key: PublicKey,
    /// When it expires.
    pub not_after: SystemTime,
    /// A client's or an admin's.
    pub kind: CertKind,
}

/// Checks `cert` for `login` at `now`: signed by `ca`, within its validity, an end-entity
/// certificate for digital signatures and client authentication (a client's or an admin's:
/// exactly one of the two purposes), issued to `login`, with no unknown critical extension,
/// and not revoked.
pub fn validate_client_certificate(
    cert: &Certificate,
    ca: &Certificate,
    login: &Login,
    now: SystemTime,
    revocation: &dyn RevocationCheck,
) -> Result<ValidatedClientCert, CertError> {
    validate_client_certificate_cached(cert, ca, login, now, revocation, None)
}

/// Remembers the certificates whose CA signature has been verified, by
/// [`signature_cache_key`]: the one check of a certificate that never changes with time, and
/// the dearest (an ECDSA verification). A server that sees the same client certificates
/// handshake after handshake skips it; validity, key usages, the login and revocation are
/// checked every time all the same.
pub trait SignatureCache: Send + Sync {
    /// Whether the certificate under `key` was verified.
    fn verified(&self, key: &[u8; 32]) -> bool;
    /// Notes that the certificate under `key` verified.
    fn remember(&self, key: [u8; 32]);
}

/// A certificate's key in a [`SignatureCache`]: SHA-256 over its DER as received. A cache
/// serves one CA (the channel's), so a hit means these very bytes verified against it.
pub fn signature_cache_key(cert_der: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(cert_der).into()
}

/// [`validate_client_certificate`], skipping the CA signature of a certificate `cache` has
/// seen verify (`cache`: the cache of `ca`, and the certificate's [`signature_cache_key`]).
pub fn validate_client_certificate_cached(
    cert: &Certificate,
    ca: &Certificate,
    login: &Login,
    now: SystemTime,
    revocation: &dyn RevocationCheck,
    cache: Option<(&dyn SignatureCache, [u8; 32])>,
) -> Result<ValidatedClientCert, CertError> {
    let (public_key, ekus) = end_entity(cert, ca, now, cache)?;
    let kind = match (
        ekus.contains(&CertKind::Client.eku()),
        ekus.contains(&CertKind::Admin.eku()),
    ) {
        (true, false) => CertKind::Client,
        (false, true) => CertKind::Admin,
        _ => return Err(CertError::WrongPurpose),
    };
    let tbs = cert.tbs_certificate();
    let bound = login_from_name(tbs.subject()).map_err(|_| CertError::WrongLogin {
        expected: login.to_string(),
        found: tbs.subject().to_string(),
    })?;
    if &bound != login {
        return Err(CertError::WrongLogin {
            expected: login.to_string(),
            found: bound.to_string(),
        });
    }
    if revocation.is_revoked(tbs.serial_number()) {
        return Err(CertError::Revoked);
    }
    Ok(ValidatedClientCert {
        login: bound,
        serial: tbs.serial_number().clone(),
        public_key,
        not_after: tbs.validity().not_after.to_system_time(),
        kind,
    })
}

/// Checks the bank server's certificate at `now`, as the client does inside the handshake:
/// signed by `ca`, within its validity, an end-entity certificate for digital signatures and
/// server authentication. Returns the key that must have signed the handshake.
///
/// Host names are TLS's business (rustls checks them on the outer connection); here the
/// question is only whether the bank CA vouches for this key as a bank server.
pub fn validate_server_certificate(
    cert: &Certificate,
    ca: &Certificate,
    now: SystemTime,
) -> Result<PublicKey, CertError> {
    check_end_entity(cert, ca, now, ID_KP_TRESOR_CHANNEL)
}

/// What client and server certificates share: issuer and signature, validity, key usage,
/// purpose, critical extensions, and a P-256 key.
fn check_end_entity(
    cert: &Certificate,
    ca: &Certificate,
    now: SystemTime,
    purpose: der::asn1::ObjectIdentifier,
) -> Result<PublicKey, CertError> {
    let (key, ekus) = end_entity(cert, ca, now, None)?;
    if !ekus.contains(&purpose) {
        return Err(CertError::WrongPurpose);
    }
    Ok(key)
}

/// The checks of [`check_end_entity`] but the purpose, the CA signature skipped where
/// `cache` has seen it verify; the key, and the extended key usages.
fn end_entity(
    cert: &Certificate,
    ca: &Certificate,
    now: SystemTime,
    cache: Option<(&dyn SignatureCache, [u8; 32])>,
) -> Result<(PublicKey, Vec<der::asn1::ObjectIdentifier>), CertError> {
    let tbs = cert.tbs_certificate();
    if tbs.issuer() != ca.tbs_certificate().subject() {
        return Err(CertError::NotIssuedByBank);
    }
    match cache {
        Some((cache, key)) if cache.verified(&key) => {}
        _ => {
            verify_signed_by(cert, ca).map_err(|_| CertError::NotIssuedByBank)?;
            if let Some((cache, key)) = cache {
                cache.remember(key);
            }
        }
    }

    let validity = tbs.validity();
    if now < validity.not_before.to_system_time() {
        return Err(CertError::NotYetValid);
    }
    if now > validity.not_after.to_system_time() {
        return Err(CertError::Expired);
    }

    let mut key_usage_ok = false;
    let mut ekus = Vec::new();
    for ext in tbs.extensions().map(|e| e.as_slice()).unwrap_or_default() {
        match ext.extn_id {
            rfc5280::ID_CE_BASIC_CONSTRAINTS => {
                let bc = BasicConstraints::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| CertError::Malformed(e.to_string()))?;
                if bc.ca {
                    return Err(CertError::WrongKeyUsage);
                }
            }
            rfc5280::ID_CE_KEY_USAGE => {
                let ku = KeyUsage::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| CertError::Malformed(e.to_string()))?;
                key_usage_ok = ku.digital_signature() && !ku.key_cert_sign();
            }
            rfc5280::ID_CE_EXT_KEY_USAGE => {
                let eku = ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| CertError::Malformed(e.to_string()))?;
                ekus = eku.0;
            }
            rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER
            | rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER
            | rfc5280::ID_CE_SUBJECT_ALT_NAME => {}
            other if ext.critical => {
                return Err(CertError::UnknownCriticalExtension(other.to_string()));
            }
            _ => {}
        }
    }
    if !key_usage_ok {
        return Err(CertError::WrongKeyUsage);
    }
    if ekus.is_empty() {
        return Err(CertError::WrongPurpose);
    }
    let key = p256_key(tbs.subject_public_key_info())
        .ok_or_else(|| CertError::Malformed("not a P-256 key".into()))?;
    Ok((key, ekus))
}

/// Whether `cert` is a CA certificate (basic constraints `cA`) that signed itself: what the
/// client accepts as the bank CA to trust.
pub fn is_ca(cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    let ca = tbs
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|ext| ext.extn_id == rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .any(|ext| BasicConstraints::from_der(ext.extn_value.as_bytes()).is_ok_and(|bc| bc.ca));
    ca && tbs.issuer() == tbs.subject() && verify_signed_by(cert, cert).is_ok()
}

/// Checks that `issuer`'s key signed `cert` with ECDSA P-256 SHA-256 (on ring: the server
/// does it in every client handshake).
pub fn verify_signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), CertError> {
    if cert.signature_algorithm().oid != rfc5912::ECDSA_WITH_SHA_256 {
        return Err(CertError::NotIssuedByBank);
    }
    let issuer_key = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .ok_or(CertError::NotIssuedByBank)?;
    let tbs = cert
        .tbs_certificate()
        .to_der()
        .map_err(|e| CertError::Malformed(e.to_string()))?;
    let sig = cert
        .signature()
        .as_bytes()
        .ok_or(CertError::NotIssuedByBank)?;
    if crate::verify_p256_sha256(issuer_key, &tbs, sig) {
        Ok(())
    } else {
        Err(CertError::NotIssuedByBank)
    }
}

/// Parses one PEM certificate.
pub fn certificate_from_pem(pem: &[u8]) -> Result<Certificate, CertError> {
    Certificate::from_pem(pem).map_err(|e| CertError::Malformed(e.to_string()))
}

/// Encodes a certificate as PEM.
pub fn certificate_to_pem(cert: &Certificate) -> Result<String, PkiError> {
    cert.to_pem(der::pem::LineEnding::LF).map_err(build_err)
}

/// The login a certificate or request names in its subject's CN.
pub fn login_from_name(name: &Name) -> Result<Login, PkiError> {
    let cn = name
        .common_name()
        .map_err(|e| malformed("subject", e))?
        .ok_or_else(|| PkiError::Malformed {
            what: "subject",
            detail: "no common name".into(),
        })?;
    Ok(Login::new(&cn.value())?)
}

/// Which kind of key a certificate says it certifies, from its extended key usage alone,
/// unchecked: for a client to choose its screens. The bank decides from a validated
/// certificate ([`validate_client_certificate`]).
pub fn certificate_kind(cert: &Certificate) -> Option<CertKind> {
    let ext = cert
        .tbs_certificate()
        .extensions()?
        .iter()
        .find(|e| e.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE)?;
    let ekus = ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
        .ok()?
        .0;
    match (
        ekus.contains(&CertKind::Client.eku()),
        ekus.contains(&CertKind::Admin.eku()),
    ) {
        (true, false) => Some(CertKind::Client),
        (false, true) => Some(CertKind::Admin),
        _ => None,
    }
}

/// SHA-256 of a certificate's public key (its DER SubjectPublicKeyInfo): what a key letter
/// prints and a security officer types back to activate the certificate.
pub fn key_fingerprint(cert: &Certificate) -> Result<[u8; 32], PkiError> {
    use sha2::Digest as _;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(build_err)?;
    Ok(sha2::Sha256::digest(&spki).into())
}

/// A fingerprint as printed: uppercase hex in groups of four (`1A2B 3C4D …`).
pub fn fingerprint_text(fp: &[u8; 32]) -> String {
    let hex = data_encoding::HEXUPPER.encode(fp);
    hex.as_bytes()
        .chunks(4)
        .map(|c| core::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fingerprint as typed from a letter: 64 hex digits in any case, with any spaces, colons
/// or dashes between them.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '-' | '\t'))
        .collect::<String>()
        .to_ascii_uppercase();
    data_encoding::HEXUPPER
        .decode(hex.as_bytes())
        .ok()?
        .try_into()
        .ok()
}

/// A serial number as colon-free lower-case hex, as admins see it.
pub fn serial_hex(serial: &SerialNumber) -> String {
    serial
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The time a certificate stops being valid.
pub fn not_after(cert: &Certificate) -> SystemTime {
    cert.tbs_certificate().validity().not_after.to_system_time()
}

// ---------------------------------------------------------------------------------------------
// Profiles.

struct CaProfile {
    subject: Name,
}

impl BuilderProfile for CaProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut exts: Vec<Extension> = Vec::new();
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        let bc = BasicConstraints {
            ca: true,
            path_len_constraint: Some(0),
        };
        exts.push(bc.to_extension(tbs.subject(), &exts)?);
        let ku = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
        exts.push(ku.to_extension(tbs.subject(), &exts)?);
        exts.push(ski.to_extension(tbs.subject(), &exts)?);
        Ok(exts)
    }
}

enum Purpose {
    /// A client's or an admin's.
    Client(CertKind),
    /// Subject alternative names, and whether the secure channel's EKU is added.
    Server(Vec<GeneralName>, bool),
}

struct LeafProfile {
    issuer: Name,
    subject: Name,
    purpose: Purpose,
}

impl BuilderProfile for LeafProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut exts: Vec<Extension> = Vec::new();
        let bc = BasicConstraints {
            ca: false,
            path_len_constraint: None,
        };
        exts.push(bc.to_extension(tbs.subject(), &exts)?);
        let ku = KeyUsage(KeyUsages::DigitalSignature.into());
        exts.push(ku.to_extension(tbs.subject(), &exts)?);
        let eku = match &self.purpose {
            Purpose::Client(kind) => ExtendedKeyUsage(vec![kind.eku()]),
            Purpose::Server(_, false) => ExtendedKeyUsage(vec![rfc5280::ID_KP_SERVER_AUTH]),
            Purpose::Server(_, true) => {
                ExtendedKeyUsage(vec![rfc5280::ID_KP_SERVER_AUTH, ID_KP_TRESOR_CHANNEL])
            }
        };
        exts.push(eku.to_extension(tbs.subject(), &exts)?);
        if let Purpose::Server(names, _) = &self.purpose
            && !names.is_empty()
        {
            let san = SubjectAltName(names.clone());
            exts.push(san.to_extension(tbs.subject(), &exts)?);
        }
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        exts.push(ski.to_extension(tbs.subject(), &exts)?);
        let issuer_ski = SubjectKeyIdentifier::try_from(issuer_spk)?;
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(issuer_ski.0),
            ..Default::default()
        };
        exts.push(aki.to_extension(tbs.subject(), &exts)?);
        Ok(exts)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn login_name(login: &Login) -> Result<Name, PkiError> {
    // A login's characters need no escaping in a distinguished name.
    Name::from_str(&format!("CN={login}")).map_err(build_err)
}

/// Escapes RFC 4514 special characters in an attribute value.
fn escape_rdn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && matches!(c, ' ' | '#'));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn p256_key(spki: &SubjectPublicKeyInfoOwned) -> Option<PublicKey> {
    let der = spki.to_der().ok()?;
    PublicKey::from_public_key_der(&der).ok()
}

fn spki_of(key: &PublicKey) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    SubjectPublicKeyInfoOwned::from_key(key).map_err(build_err)
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    // 128 random bits, with the top bit cleared so that the DER INTEGER stays positive and
    // 16 bytes long, and never zero.
    let mut bytes = [0u8; 16];
    loop {
        crate::fill_random(&mut bytes);
        bytes[0] &= 0x7f;
        if bytes[0] != 0 {
            return SerialNumber::new(&bytes).map_err(build_err);
        }
    }
}

fn validity_from(now: SystemTime, validity: Duration) -> Result<Validity, PkiError> {
    let start = now.checked_sub(BACKDATE).unwrap_or(now);
    let end = now
        .checked_add(validity)
        .ok_or_else(|| PkiError::Build("validity overflows".into()))?;
    // Whole seconds, as X.509 times are.
    let start = truncate_to_second(start);
    let end = truncate_to_second(end);
    Ok(Validity::new(
        Time::try_from(start).map_err(build_err)?,
        Time::try_from(end).map_err(build_err)?,
    ))
}

fn truncate_to_second(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

fn malformed(what: &'static str, e: impl fmt::Display) -> PkiError {
    PkiError::Malformed {
        what,
        detail: e.to_string(),
    }
}

fn build_err(e: impl fmt::Display) -> PkiError {
    PkiError::Build(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(s: &str) -> Login {
        Login::new(s).unwrap()
    }

    fn ca() -> BankCa {
        BankCa::generate(
            "Test Bank CA",
            "Test Bank, PJSC",
            "UA",
            SystemTime::now(),
            DEFAULT_CA_VALIDITY,
        )
        .unwrap()
    }

    fn issue(ca: &BankCa, who: &str) -> (PrivateKey, Certificate) {
        let key = PrivateKey::generate();
        let csr = build_csr(&key, &login(who)).unwrap();
        let verified = verify_csr(&csr.to_der().unwrap()).unwrap();
        let cert = ca
            .issue_client_certificate(
                &verified,
                &login(who),
                SystemTime::now(),
                DEFAULT_CLIENT_VALIDITY,
            )
            .unwrap();
        (key, cert)
    }

    #[test]
    fn issued_certificate_validates_for_its_login() {
        let ca = ca();
        let (key, cert) = issue(&ca, "ivan");
        key.check_matches(&cert).unwrap();
        let ok = validate_client_certificate(
            &cert,
            ca.certificate(),
            &login("ivan"),
            SystemTime::now(),
            &NoRevocationList,
        )
        .unwrap();
        assert_eq!(ok.login, login("ivan"));
        assert_eq!(ok.public_key, key.public_key());
        assert_eq!(serial_hex(&ok.serial).len(), 32);
    }

    /// A cache that counts what it is asked.
    #[derive(Default)]
    struct Counting(std::sync::Mutex<(std::collections::HashSet<[u8; 32]>, u32)>);

    impl SignatureCache for Counting {
        fn verified(&self, key: &[u8; 32]) -> bool {
            self.0.lock().unwrap().0.contains(key)
        }
        fn remember(&self, key: [u8; 32]) {
            let mut g = self.0.lock().unwrap();
            g.0.insert(key);
            g.1 += 1;
        }
    }

    #[test]
    fn a_cached_signature_skips_only_the_signature() {
        let ca = ca();
        let (_, cert) = issue(&ca, "ivan");
        let der = cert.to_der().unwrap();
        let key = signature_cache_key(&der);
        let cache = Counting::default();
        let check = |cert: &Certificate, who: &str, at: SystemTime, key: [u8; 32]| {
            validate_client_certificate_cached(
                cert,
                ca.certificate(),
                &login(who),
                at,
                &NoRevocationList,
                Some((&cache, key)),
            )
        };
        let now = SystemTime::now();
        check(&cert, "ivan", now, key).unwrap();
        check(&cert, "ivan", now, key).unwrap();
        assert_eq!(
            cache.0.lock().unwrap().1,
            1,
            "verified once, then remembered"
        );
        // Remembered, the certificate is still checked for everything that can change.
        let late = now + DEFAULT_CLIENT_VALIDITY + Duration::from_secs(86_400);
        assert!(matches!(
            check(&cert, "ivan", late, key),
            Err(CertError::Expired)
        ));
        assert!(matches!(
            check(&cert, "olena", now, key),
            Err(CertError::WrongLogin { .. })
        ));
        assert!(matches!(
            validate_client_certificate_cached(
                &cert,
                ca.certificate(),
                &login("ivan"),
                now,
                &|s: &SerialNumber| s == cert.tbs_certificate().serial_number(),
                Some((&cache, key)),
            ),
            Err(CertError::Revoked)
        ));
        // Another CA's certificate for the same name is not let in by the cache's entry:
        // its bytes are another key, and its signature fails.
        let (_, forged) = issue(&self::ca(), "ivan");
        let forged_key = signature_cache_key(&forged.to_der().unwrap());
        assert_ne!(forged_key, key);
        assert!(matches!(
            check(&forged, "ivan", now, forged_key),
            Err(CertError::NotIssuedByBank)
        ));
        assert!(
            !cache.verified(&forged_key),
            "a failed signature is not remembered"
        );
    }

    #[test]
    fn fingerprints_print_in_groups_and_parse_as_typed() {
        let (_, cert) = issue(&ca(), "ivan");
        let fp = key_fingerprint(&cert).unwrap();
        let text = fingerprint_text(&fp);
        assert_eq!(text.len(), 64 + 15);
        assert!(text.split(' ').all(|g| g.len() == 4));
        let cases = [
            (text.clone(), true),
            (text.to_lowercase(), true),
            (text.replace(' ', ":"), true),
            (text.replace(' ', ""), true),
            (text.replace(' ', "")[..62].to_string(), false),
            (format!("{text} 00"), false),
            (text.replacen('0', "O", 1), text.find('0').is_none()),
        ];
        for (typed, ok) in cases {
            assert_eq!(parse_fingerprint(&typed) == Some(fp), ok, "{typed}");
        }
    }

    /// An admin's certificate carries the admin EKU and not clientAuth, a client's the
    /// reverse; validation says which, and neither is ever read as the other.
    #[test]
    fn admin_and_client_certificates_say_which_they_are() {
        let ca = ca();
        let key = PrivateKey::generate();
        let csr = build_csr(&key, &login("sec.one")).unwrap();
        let verified = verify_csr(&csr.to_der().unwrap()).unwrap();
        let now = SystemTime::now();
        let admin = ca
            .issue_certificate(
                &verified,
                &login("sec.one"),
                CertKind::Admin,
                now,
                DEFAULT_CLIENT_VALIDITY,
            )
            .unwrap();
        let (_, client) = issue(&ca, "ivan");
        let ekus = |c: &Certificate| {
            c.tbs_certificate()
                .extensions()
                .unwrap()
                .iter()
                .find(|e| e.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE)
                .map(|e| {
                    ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                        .unwrap()
                        .0
                })
                .unwrap()
        };
        assert_eq!(ekus(&admin), vec![ID_KP_TRESOR_ADMIN]);
        assert_eq!(ekus(&client), vec![rfc5280::ID_KP_CLIENT_AUTH]);
        let kind = |c: &Certificate, who: &str| {
            validate_client_certificate(c, ca.certificate(), &login(who), now, &NoRevocationList)
                .map(|v| v.kind)
        };
        assert_eq!(kind(&admin, "sec.one"), Ok(CertKind::Admin));
        assert_eq!(kind(&client, "ivan"), Ok(CertKind::Client));
        assert_eq!(certificate_kind(&admin), Some(CertKind::Admin));
        assert_eq!(certificate_kind(&client), Some(CertKind::Client));
        // The channel's server certificate is neither.
        let server = ca
            .issue_server_certificate(
                &key.public_key(),
                &["bank".into()],
                &[],
                now,
                DEFAULT_CLIENT_VALIDITY,
            )
            .unwrap();
        assert_eq!(
            validate_client_certificate(
                &server,
                ca.certificate(),
                &login("bank"),
                now,
                &NoRevocationList
            )
            .unwrap_err(),
            CertError::WrongPurpose
        );
    }

    #[test]
    fn a_ca_whose_key_is_a_signer_issues_the_same_and_a_verify_only_ca_refuses() {
        // A key behind the KeySigner interface, as an HSM's is.
        let key: Arc<dyn KeySigner> = Arc::new(PrivateKey::generate());
        let ca = BankCa::generate_with(
            Arc::clone(&key),
            "HSM CA",
            "Bank",
            "UA",
            SystemTime::now(),
            DEFAULT_CA_VALIDITY,
        )
        .unwrap();
        assert!(ca.private_key().is_none() && ca.can_issue());
        verify_signed_by(ca.certificate(), ca.certificate()).unwrap();
        let (_, cert) = issue(&ca, "ivan");
        verify_signed_by(&cert, ca.certificate()).unwrap();
        let again = BankCa::from_signer(ca.certificate().clone(), Arc::clone(&key)).unwrap();
        verify_signed_by(&issue(&again, "olena").1, ca.certificate()).unwrap();
        assert!(
            BankCa::from_signer(ca.certificate().clone(), Arc::new(PrivateKey::generate()))
                .is_err()
        );

        let verify_only = BankCa::verify_only(ca.certificate().clone());
        assert!(!verify_only.can_issue());
        let key = PrivateKey::generate();
        let csr = build_csr(&key, &login("ivan")).unwrap();
        let verified = verify_csr(&csr.to_der().unwrap()).unwrap();
        assert!(matches!(
            verify_only.issue_client_certificate(
                &verified,
                &login("ivan"),
                SystemTime::now(),
                DEFAULT_CLIENT_VALIDITY
            ),
            Err(PkiError::NoCaKey)
        ));
    }

    #[test]
    fn each_rule_has_its_error() {
        let ca = ca();
        let (_, cert) = issue(&ca, "ivan");
        let now = SystemTime::now();
        let check = |c: &Certificate, ca: &Certificate, who: &str, at: SystemTime| {
            validate_client_certificate(c, ca, &login(who), at, &NoRevocationList)
        };
        assert_eq!(
            check(&cert, ca.certificate(), "olena", now).unwrap_err(),
            CertError::WrongLogin {
                expected: "olena".into(),
                found: "ivan".into()
            }
        );
        assert_eq!(
            check(
                &cert,
                ca.certificate(),
                "ivan",
                now + DEFAULT_CLIENT_VALIDITY + Duration::from_secs(60)
            )
            .unwrap_err(),
            CertError::Expired
        );
        assert_eq!(
            check(
                &cert,
                ca.certificate(),
                "ivan",
                now - Duration::from_secs(3600)
            )
            .unwrap_err(),
            CertError::NotYetValid
        );
        let other = BankCa::generate(
            "Test Bank CA",
            "Test Bank, PJSC",
            "UA",
            now,
            DEFAULT_CA_VALIDITY,
        )
        .unwrap();
        // Same name, other key: the signature check catches it.
        assert_eq!(
            check(&cert, other.certificate(), "ivan", now).unwrap_err(),
            CertError::NotIssuedByBank
        );
        let revoked = |s: &SerialNumber| s == cert.tbs_certificate().serial_number();
        assert_eq!(
            validate_client_certificate(&cert, ca.certificate(), &login("ivan"), now, &revoked)
                .unwrap_err(),
            CertError::Revoked
        );
        // The CA's own certificate is not a client certificate.
        let ca_cert = ca.certificate().clone();
        assert_eq!(
            check(&ca_cert, ca.certificate(), "ivan", now).unwrap_err(),
            CertError::WrongKeyUsage
        );
        // A server certificate has the wrong purpose.
        let server_key = PrivateKey::generate();
        let server = ca
            .issue_server_certificate(
                &server_key.public_key(),
                &["ivan".into()],
                &[],
                now,
                DEFAULT_CLIENT_VALIDITY,
            )
            .unwrap();
        assert_eq!(
            check(&server, ca.certificate(), "ivan", now).unwrap_err(),
            CertError::WrongPurpose
        );
    }

    #[test]
    fn csr_for_another_login_is_refused() {
        let ca = ca();
        let key = PrivateKey::generate();
        let csr = build_csr(&key, &login("mallory")).unwrap();
        let verified = verify_csr(&csr.to_der().unwrap()).unwrap();
        assert!(matches!(
            ca.issue_client_certificate(
                &verified,
                &login("ivan"),
                SystemTime::now(),
                DEFAULT_CLIENT_VALIDITY
            ),
            Err(PkiError::RequestForAnotherLogin { .. })
        ));
    }

    #[test]
    fn forged_csr_signature_is_refused() {
        let key = PrivateKey::generate();
        let mut csr = build_csr(&key, &login("ivan")).unwrap();
        // Swap in another key: the signature no longer matches.
        let other = PrivateKey::generate();
        csr.info.public_key = spki_of(&other.public_key()).unwrap();
        assert!(matches!(
            verify_csr(&csr.to_der().unwrap()),
            Err(PkiError::BadRequestSignature)
        ));
    }

    #[test]
    fn rdn_escaping() {
        assert_eq!(escape_rdn("Bank, PJSC"), "Bank\\, PJSC");
        assert_eq!(escape_rdn("#1"), "\\#1");
        let name = Name::from_str(&format!("O={}", escape_rdn("A, B=C"))).unwrap();
        assert_eq!(name.organization().unwrap().unwrap().value(), "A, B=C");
    }
}
