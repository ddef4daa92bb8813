//! A P-256 key that signs, wherever it lives: decrypted from a key file into memory, or
//! inside a hardware token that never lets it out. Handshakes, certificate requests,
//! certificates and payment orders are all signed through [`KeySigner`], so that every flow
//! works the same with either.

use std::sync::Arc;

use der::asn1::BitString;
use p256::PublicKey;
use p256::ecdsa::signature::Keypair;
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use spki::{AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier};
use x509_cert::builder::Builder;

use crate::channel::HandshakeSigner;
use crate::keyfile::PrivateKey;

/// The key could not sign: a token pulled out, a session the token closed. The text is for
/// the log; a caller that owns the signer (the client, for a token) keeps the precise cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the key could not sign: {0}")]
pub struct SignError(pub String);

/// A P-256 key that signs with ECDSA over SHA-256, DER-encoded.
pub trait KeySigner: HandshakeSigner {
    /// The public half, for certificate requests and for checking a certificate belongs to
    /// the key.
    fn public_key(&self) -> PublicKey;
}

impl<T: KeySigner + ?Sized> KeySigner for Arc<T> {
    fn public_key(&self) -> PublicKey {
        (**self).public_key()
    }
}

impl KeySigner for PrivateKey {
    fn public_key(&self) -> PublicKey {
        PrivateKey::public_key(self)
    }
}

/// A raw `r‖s` ECDSA P-256 signature (64 bytes, as PKCS#11's `CKM_ECDSA` gives it) as DER,
/// with `s` normalised to the lower half (some verifiers insist).
pub fn der_from_raw(rs: &[u8]) -> Result<Vec<u8>, SignError> {
    let sig = Signature::from_slice(rs)
        .map_err(|_| SignError(format!("a {}-byte raw signature", rs.len())))?;
    Ok(sig.normalize_s().to_der().as_bytes().to_vec())
}

/// What the X.509 builders need to know of a signer besides its signatures: its public key
/// and its algorithm (ecdsa-with-SHA256, no parameters).
struct Identity(VerifyingKey);

impl Keypair for Identity {
    type VerifyingKey = VerifyingKey;
    fn verifying_key(&self) -> VerifyingKey {
        self.0
    }
}

impl DynSignatureAlgorithmIdentifier for Identity {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
            parameters: None,
        })
    }
}

/// Why a builder could not be signed.
#[derive(Debug)]
pub(crate) enum BuildError {
    /// The builder refused (an encoding problem).
    Build(String),
    /// The key did not sign.
    Sign(SignError),
}

/// Runs an X.509 builder (a certificate or a request) through `signer`, keeping its error
/// apart from the builder's own so that a pulled token is reported as such.
pub(crate) fn build_signed<B: Builder>(
    mut builder: B,
    signer: &dyn KeySigner,
) -> Result<B::Output, BuildError> {
    let identity = Identity(VerifyingKey::from(&signer.public_key()));
    let blob = builder
        .finalize(&identity)
        .map_err(|e| BuildError::Build(e.to_string()))?;
    let der = signer.sign(&blob).map_err(BuildError::Sign)?;
    // The signer's DER is checked as a signature before it goes into the structure.
    let sig = DerSignature::from_bytes(&der)
        .map_err(|_| BuildError::Sign(SignError("not a DER ECDSA signature".into())))?;
    let bits =
        BitString::from_bytes(sig.as_bytes()).map_err(|e| BuildError::Build(e.to_string()))?;
    builder
        .assemble(bits, &identity)
        .map_err(|e| BuildError::Build(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn raw_signatures_become_der_that_verifies() {
        use p256::ecdsa::signature::Signer as _;
        let key = PrivateKey::generate();
        let sig: Signature = key.signing_key().sign(b"message");
        let der = der_from_raw(&sig.to_bytes()).unwrap();
        use p256::elliptic_curve::sec1::ToSec1Point as _;
        let spki = key.public_key().to_sec1_point(false);
        assert!(crate::verify_p256_sha256(spki.as_bytes(), b"message", &der));
        for bad in [&[0u8; 63][..], &[0u8; 64][..], &[0xff; 64][..]] {
            assert!(der_from_raw(bad).is_err());
        }
    }
}
