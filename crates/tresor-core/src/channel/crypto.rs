//! The channel's cryptography (docs/PROTOCOL.md §3–§6): transcript hashing, the HKDF key
//! schedule, AES-256-GCM records with counter nonces, ephemeral ECDH and ECDSA.
//!
//! ECDH, ECDSA, SHA-256 and HMAC come from ring; records are sealed with the aes-gcm crate;
//! the key schedule uses the hkdf crate, whose pseudo-random keys can be kept as bytes
//! between the two HTTP requests of a handshake.

use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::SystemRandom;
use ring::{digest, hmac, signature};
use sha2::Sha256;
use zeroize::{Zeroize as _, Zeroizing};

use super::ChannelError;
use super::wire::{FINISHED_LEN, SHARE_LEN, TAG_LEN, put_opaque16, put_opaque24};
use crate::keyfile::PrivateKey;
use crate::pki::CertError;
use crate::signer::SignError;
use x509_cert::Certificate;

/// Running SHA-256 of the handshake, fed the bytes exactly as sent. A server's transcript
/// also keeps the bytes, so that a pending handshake can be exported and its hash rebuilt
/// by another instance (ring's hash state cannot be written out).
#[derive(Clone)]
pub(crate) struct Transcript {
    hash: digest::Context,
    bytes: Option<Vec<u8>>,
}

impl Transcript {
    pub(crate) fn new() -> Self {
        Self {
            hash: digest::Context::new(&digest::SHA256),
            bytes: None,
        }
    }

    /// A transcript that keeps what it was fed, for [`Self::bytes`].
    pub(crate) fn recording() -> Self {
        Self {
            bytes: Some(Vec::with_capacity(1024)),
            ..Self::new()
        }
    }

    /// A recording transcript fed `bytes`: the inverse of [`Self::bytes`].
    pub(crate) fn replay(bytes: &[u8]) -> Self {
        let mut t = Self::recording();
        t.add(bytes);
        t
    }

    /// Everything a [`Self::recording`] transcript was fed; `None` for one that was not.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }

    pub(crate) fn add(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        if let Some(kept) = &mut self.bytes {
            kept.extend_from_slice(bytes);
        }
    }

    /// Adds a field taken from inside an encrypted part, with its two-byte length (§3).
    pub(crate) fn add_opaque16(&mut self, bytes: &[u8]) {
        let mut field = Vec::with_capacity(2 + bytes.len());
        put_opaque16(&mut field, bytes);
        self.add(&field);
    }

    /// Adds a field taken from inside an encrypted part, with its three-byte length (§3).
    pub(crate) fn add_opaque24(&mut self, bytes: &[u8]) {
        let mut field = Vec::with_capacity(3 + bytes.len());
        put_opaque24(&mut field, bytes);
        self.add(&field);
    }

    /// The hash of everything added so far; the transcript goes on.
    pub(crate) fn hash(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.hash.clone().finish().as_ref());
        out
    }
}

/// The content a handshake signature covers (§4): 64 spaces, a context string naming the
/// protocol and the role, a zero byte, and the transcript hash.
pub(crate) fn signed_content(context: &[u8], transcript_hash: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + context.len() + 1 + 32);
    out.extend_from_slice(&[0x20; 64]);
    out.extend_from_slice(context);
    out.push(0);
    out.extend_from_slice(transcript_hash);
    out
}

/// The server's signature context.
pub(crate) const SERVER_CONTEXT: &[u8] = b"Tresor v1 server signature";
/// The client's signature context.
pub(crate) const CLIENT_CONTEXT: &[u8] = b"Tresor v1 client signature";

/// `HKDF-Expand(secret, u16 len || opaque8("tresor1 " || label) || opaque8(context), len)`.
fn expand_label(prk: &Hkdf<Sha256>, label: &str, context: &[u8], out: &mut [u8]) {
    let full = [b"tresor1 ".as_slice(), label.as_bytes()].concat();
    debug_assert!(full.len() <= 255 && context.len() <= 255 && out.len() <= 255 * 32);
    let len = (out.len() as u16).to_be_bytes();
    let info: [&[u8]; 5] = [
        &len,
        &[full.len() as u8],
        &full,
        &[context.len() as u8],
        context,
    ];
    // Lengths here are constants far below HKDF-SHA256's 8160-byte limit.
    #[allow(clippy::expect_used)]
    prk.expand_multi_info(&info, out)
        .expect("HKDF output length within limits");
}

fn expand_key(prk: &Hkdf<Sha256>, label: &str, context: &[u8]) -> DirectionKey {
    let mut key = Zeroizing::new([0u8; 32]);
    let mut iv = [0u8; 12];
    expand_label(prk, &format!("{label} key"), context, key.as_mut());
    expand_label(prk, &format!("{label} iv"), context, &mut iv);
    DirectionKey::new(&key, iv)
}

/// The handshake's keys (§5), derived once the shares are exchanged.
pub(crate) struct HandshakeKeys {
    pub(crate) server: DirectionKey,
    pub(crate) client: DirectionKey,
    pub(crate) server_finished: Zeroizing<[u8; 32]>,
    pub(crate) client_finished: Zeroizing<[u8; 32]>,
    /// The master secret, from which the application keys are expanded over TH6.
    pub(crate) master: Zeroizing<[u8; 32]>,
}

impl HandshakeKeys {
    pub(crate) fn derive(ecdh: &[u8; 32], th1: &[u8; 32]) -> Self {
        let (_, hs) = Hkdf::<Sha256>::extract(Some(b"tresor1 handshake"), ecdh);
        let mut server_finished = Zeroizing::new([0u8; 32]);
        let mut client_finished = Zeroizing::new([0u8; 32]);
        expand_label(&hs, "s finished", b"", server_finished.as_mut());
        expand_label(&hs, "c finished", b"", client_finished.as_mut());
        let mut derived = Zeroizing::new([0u8; 32]);
        expand_label(&hs, "derived", b"", derived.as_mut());
        let (mut ms, _) = Hkdf::<Sha256>::extract(Some(derived.as_ref()), &[0u8; 32]);
        let mut master = Zeroizing::new([0u8; 32]);
        master.copy_from_slice(&ms);
        ms.as_mut_slice().zeroize();
        Self {
            server: expand_key(&hs, "s hs", th1),
            client: expand_key(&hs, "c hs", th1),
            server_finished,
            client_finished,
            master,
        }
    }
}

/// The application keys (§5), one per direction.
pub(crate) struct TrafficKeys {
    pub(crate) client: DirectionKey,
    pub(crate) server: DirectionKey,
}

impl TrafficKeys {
    pub(crate) fn derive(master: &[u8; 32], th6: &[u8; 32]) -> Self {
        // A 32-byte PRK is exactly SHA-256's output size, which `from_prk` accepts.
        #[allow(clippy::expect_used)]
        let ms = Hkdf::<Sha256>::from_prk(master).expect("32-byte PRK");
        Self {
            client: expand_key(&ms, "c ap", th6),
            server: expand_key(&ms, "s ap", th6),
        }
    }
}

/// One direction's AES-256-GCM key and IV. The nonce of record `seq` is `iv XOR seq`
/// (right-aligned), so a key never sees the same nonce twice while seq only grows.
///
/// The expanded key schedule is kept (and wiped on drop by the `aes` crate's zeroize
/// feature), so that a record costs no key expansion; the raw key too, so that a server
/// can hand a session to another instance ([`super::server::ServerSession::export`]).
pub(crate) struct DirectionKey {
    cipher: Aes256Gcm,
    key: Zeroizing<[u8; 32]>,
    iv: [u8; 12],
}

impl DirectionKey {
    pub(crate) fn new(key: &[u8; 32], iv: [u8; 12]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
            key: Zeroizing::new(*key),
            iv,
        }
    }

    /// Key then IV: 44 bytes, for [`super::server::ServerSession::export`].
    pub(crate) fn export(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&*self.key);
        out.extend_from_slice(&self.iv);
    }

    /// The inverse of [`export`](Self::export).
    pub(crate) fn import(bytes: &[u8; 44]) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes[..32]);
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&bytes[32..]);
        Self::new(&key, iv)
    }

    fn nonce(&self, seq: u64) -> Nonce<aes_gcm::aes::cipher::consts::U12> {
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
            *b ^= s;
        }
        n.into()
    }

    pub(crate) fn seal(&self, seq: u64, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        // Encryption fails only for plaintexts over 64 GiB; records are at most 1 MiB.
        #[allow(clippy::expect_used)]
        let tag = self
            .cipher
            .encrypt_inout_detached(&self.nonce(seq), aad, buf.as_mut_slice().into())
            .expect("record within AES-GCM's length limit");
        buf.extend_from_slice(&tag);
        buf
    }

    /// Opens a sealed payload; `None` if it was not sealed under this key, nonce and AAD.
    pub(crate) fn open(&self, seq: u64, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let split = sealed.len().checked_sub(TAG_LEN)?;
        let (ciphertext, tag) = sealed.split_at(split);
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let tag = Tag::<aes_gcm::aes::cipher::consts::U16>::try_from(tag).ok()?;
        self.cipher
            .decrypt_inout_detached(&self.nonce(seq), aad, buf.as_mut_slice().into(), &tag)
            .ok()?;
        Some(buf)
    }
}

/// `HMAC-SHA256(key, transcript hash)`, the finished MAC.
pub(crate) fn finished_mac(key: &[u8; 32], th: &[u8; 32]) -> [u8; FINISHED_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), th);
    let mut out = [0u8; FINISHED_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Checks a finished MAC in constant time.
pub(crate) fn verify_finished(
    key: &[u8; 32],
    th: &[u8; 32],
    mac: &[u8; FINISHED_LEN],
) -> Result<(), ChannelError> {
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), th, mac)
        .map_err(|_| ChannelError::BadSignature)
}

/// An ephemeral P-256 key for one handshake. ring refuses to use it twice.
pub(crate) struct Ephemeral {
    key: EphemeralKey,
    public: [u8; SHARE_LEN],
}

enum EphemeralKey {
    Ring(EphemeralPrivateKey),
    /// A fixed scalar, for test vectors only (`testkit`): ring makes ephemeral keys from the
    /// OS generator alone, so a recorded handshake is replayed with the p256 crate.
    #[cfg(feature = "testkit")]
    Fixed(p256::SecretKey),
}

impl Ephemeral {
    /// The ephemeral key of a fixed scalar, for test vectors.
    #[cfg(feature = "testkit")]
    pub(crate) fn fixed(scalar: &[u8; 32]) -> Result<Self, ChannelError> {
        use p256::elliptic_curve::sec1::ToSec1Point as _;
        let secret = p256::SecretKey::from_slice(scalar)
            .map_err(|_| ChannelError::IllegalParameter("ephemeral scalar"))?;
        let point = secret.public_key().to_sec1_point(false);
        let mut public = [0u8; SHARE_LEN];
        public.copy_from_slice(point.as_bytes());
        Ok(Self {
            key: EphemeralKey::Fixed(secret),
            public,
        })
    }

    pub(crate) fn generate() -> Self {
        let rng = SystemRandom::new();
        // Fails only if the OS random number generator does.
        #[allow(clippy::expect_used)]
        let key = EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
            .expect("the operating system's random number generator failed");
        #[allow(clippy::expect_used)]
        let computed = key.compute_public_key().expect("public key of a fresh key");
        let mut public = [0u8; SHARE_LEN];
        public.copy_from_slice(computed.as_ref());
        Self {
            key: EphemeralKey::Ring(key),
            public,
        }
    }

    pub(crate) fn public(&self) -> &[u8; SHARE_LEN] {
        &self.public
    }

    /// ECDH with the peer's share. ring checks that the share is an uncompressed point on
    /// P-256 (not the point at infinity), which is what stops invalid-curve attacks.
    pub(crate) fn agree(self, peer: &[u8; SHARE_LEN]) -> Result<Zeroizing<[u8; 32]>, ChannelError> {
        let bad = ChannelError::IllegalParameter("key share is not a P-256 point");
        match self.key {
            EphemeralKey::Ring(key) => agreement::agree_ephemeral(
                key,
                &UnparsedPublicKey::new(&agreement::ECDH_P256, peer),
                |secret| {
                    let mut out = Zeroizing::new([0u8; 32]);
                    out.copy_from_slice(secret);
                    out
                },
            )
            .map_err(|_| bad),
            #[cfg(feature = "testkit")]
            EphemeralKey::Fixed(secret) => {
                use p256::elliptic_curve::point::AffineCoordinates as _;
                let peer = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| bad)?;
                let shared = (peer.to_projective() * *secret.to_nonzero_scalar()).to_affine();
                let mut out = Zeroizing::new([0u8; 32]);
                out.copy_from_slice(shared.x().as_slice());
                Ok(out)
            }
        }
    }
}

/// Signs a handshake (the client with its key from the drive or token, the server with its
/// own).
///
/// A trait so that the key may live elsewhere (a hardware token: see
/// [`KeySigner`](crate::signer::KeySigner)) and so that tests can play a misbehaving peer.
pub trait HandshakeSigner: Send + Sync {
    /// ECDSA P-256 SHA-256 over `message`, DER-encoded. Fails only where the key lives
    /// outside this process (a token pulled out).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// A shared signer: one key unlocked once signs many handshakes.
impl<T: HandshakeSigner + ?Sized> HandshakeSigner for std::sync::Arc<T> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        (**self).sign(message)
    }
}

impl HandshakeSigner for PrivateKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self.signing_key().sign(message);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// A signer on ring: about five times faster than the p256 crate, for the server.
pub struct RingSigner {
    pair: signature::EcdsaKeyPair,
    rng: SystemRandom,
}

impl RingSigner {
    /// Loads `key` into ring.
    pub fn new(key: &PrivateKey) -> Result<Self, ChannelError> {
        let rng = SystemRandom::new();
        let der = key.to_pkcs8_der();
        let pair = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            der.as_ref(),
            &rng,
        )
        .map_err(|_| ChannelError::IllegalParameter("signing key"))?;
        Ok(Self { pair, rng })
    }
}

impl HandshakeSigner for RingSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        // Fails only if the OS random number generator does.
        #[allow(clippy::expect_used)]
        let sig = self
            .pair
            .sign(&self.rng, message)
            .expect("the operating system's random number generator failed");
        Ok(sig.as_ref().to_vec())
    }
}

/// Checks a handshake signature with the key of `cert`.
pub(crate) fn verify_signature(
    cert: &Certificate,
    message: &[u8],
    sig: &[u8],
) -> Result<(), ChannelError> {
    let key = cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .ok_or(ChannelError::BadCertificate(CertError::Malformed(
            "public key".into(),
        )))?;
    if crate::verify_p256_sha256(key, message, sig) {
        Ok(())
    } else {
        Err(ChannelError::BadSignature)
    }
}

/// Fresh bytes from the OS CSPRNG.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    crate::fill_random(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_the_iv_xor_the_sequence_number() {
        let k = DirectionKey::new(&[1; 32], [0xff; 12]);
        let n: [u8; 12] = k.nonce(0x0102).into();
        assert_eq!(
            n,
            [
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xfd
            ]
        );
    }

    #[test]
    fn a_record_opens_only_with_its_seq_and_aad() {
        let k = DirectionKey::new(&[1; 32], [2; 12]);
        let sealed = k.seal(5, b"aad", b"hello");
        assert_eq!(sealed.len(), 5 + TAG_LEN);
        assert_eq!(k.open(5, b"aad", &sealed).unwrap().as_slice(), b"hello");
        assert!(k.open(6, b"aad", &sealed).is_none());
        assert!(k.open(5, b"aaD", &sealed).is_none());
        assert!(k.open(5, b"aad", &sealed[..4]).is_none());
    }

    #[test]
    fn expand_label_follows_the_spec() {
        // HKDF-Expand with info = 00 20 || 0f "tresor1 derived" || 00, computed by hand
        // with ring's HKDF as an independent implementation.
        let (_, prk) = Hkdf::<Sha256>::extract(Some(b"salt"), b"ikm");
        let mut ours = [0u8; 32];
        expand_label(&prk, "derived", b"", &mut ours);

        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"salt");
        let ring_prk = salt.extract(b"ikm");
        let info: [&[u8]; 1] = [b"\x00\x20\x0ftresor1 derived\x00"];
        let okm = ring_prk.expand(&info, ring::hkdf::HKDF_SHA256).unwrap();
        let mut theirs = [0u8; 32];
        okm.fill(&mut theirs).unwrap();
        assert_eq!(ours, theirs);
    }
}
