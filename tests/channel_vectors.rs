//! A recorded handshake, replayed byte for byte (`tests/vectors/handshake-v1.json`).
//!
//! The file holds the fixed inputs of one authenticated handshake (randoms, session id,
//! ephemeral scalars, certificates and keys), every message as sent, and every intermediate
//! value of docs/PROTOCOL.md §3–§6. The test checks three ways that they agree:
//! 1. Tresor's own state machines, fed the fixed inputs, produce exactly the recorded
//!    messages;
//! 2. an implementation of the text written here, on separate crates (p256 arithmetic for
//!    ECDH, sha2, hkdf and its hmac, aes-gcm), computes the recorded intermediates from the
//!    inputs and the messages, opens every encrypted part, checks both signatures and
//!    finished MACs, and seals each plaintext again into the recorded bytes;
//! 3. the recorded request and reply are what the sessions carried.
//!
//! An integrator checks their implementation against the same file. Regenerate it (new
//! certificates, same fixed randoms) with `TRESOR_WRITE_VECTORS=1 cargo test -p
//! tresor-tests --test channel_vectors`; it must not change otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hkdf::hmac::{Hmac, Mac as _};
use p256::ecdsa::signature::Verifier as _;
use sha2::{Digest as _, Sha256};
use tresor_core::channel::client::{self, ClientAuthentication, Reply};
use tresor_core::channel::server::{self, Request, ServerIdentity, SessionParams};
use tresor_core::channel::{Mode, SessionId};
use tresor_core::pki::{self, NoRevocationList};
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::{Decode as _, Encode as _};
use tresor_core::{Login, PrivateKey};

type Values = BTreeMap<String, String>;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/handshake-v1.json")
}

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

fn unhex(v: &Values, k: &str) -> Vec<u8> {
    let s = v.get(k).unwrap_or_else(|| panic!("{k} missing"));
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

fn arr<const N: usize>(v: &Values, k: &str) -> [u8; N] {
    unhex(v, k).try_into().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tresor's side: the handshake and one request, with the fixed inputs.

/// Runs Tresor's state machines on `inputs`; the messages they send.
fn run_tresor(inputs: &Values) -> Values {
    let ca = Certificate::from_der(&unhex(inputs, "ca_certificate")).unwrap();
    let server_key = PrivateKey::from_pkcs8_der(&unhex(inputs, "server_key_pkcs8")).unwrap();
    let client_key = PrivateKey::from_pkcs8_der(&unhex(inputs, "client_key_pkcs8")).unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(inputs["now"].parse::<u64>().unwrap());
    let login = Login::new(&inputs["login"]).unwrap();
    // The p256 crate's ECDSA is deterministic (RFC 6979): with fixed keys and inputs, the
    // signatures are fixed too.
    let auth = ClientAuthentication::Key {
        login,
        certificate: unhex(inputs, "client_certificate"),
        signer: Box::new(client_key),
    };
    let identity = ServerIdentity::new(unhex(inputs, "server_certificate"), Box::new(server_key));
    let params = SessionParams {
        idle_timeout: Duration::from_secs(inputs["idle_timeout_seconds"].parse().unwrap()),
        max_records: inputs["max_records"].parse().unwrap(),
        ..SessionParams::default()
    };

    let (await_hello, client_hello) = client::start_fixed(
        auth,
        arr(inputs, "client_random"),
        &arr(inputs, "client_ephemeral_scalar"),
    )
    .unwrap();
    let (pending, server_hello) = server::respond_fixed(
        &client_hello,
        &identity,
        now,
        arr(inputs, "server_random"),
        SessionId(arr(inputs, "session_id")),
        &arr(inputs, "server_ephemeral_scalar"),
    )
    .unwrap();
    let (await_accept, client_finish) = await_hello.receive(&server_hello, &ca, now).unwrap();
    let verified = pending.verify(&client_finish, &ca, now).ok().unwrap();
    let (mut server_session, accept) = verified.accept(&NoRevocationList, params, now).unwrap();
    let mut client_session = await_accept.receive(&accept).unwrap();
    assert_eq!(client_session.mode(), Mode::Authenticated);

    let request = unhex(inputs, "request_payload");
    let request_record = client_session.seal(&request).unwrap();
    let (got, slot) = match server_session.open(&request_record, now).unwrap() {
        Request::Data(payload, slot) => (payload, slot),
        other => panic!("{other:?}"),
    };
    assert_eq!(got.as_slice(), request.as_slice());
    let reply = unhex(inputs, "reply_payload");
    let reply_record = server_session.seal_reply(slot, &reply).unwrap();
    match client_session.open(&reply_record).unwrap() {
        Reply::Data(bytes) => assert_eq!(bytes.as_slice(), reply.as_slice()),
        other => panic!("{other:?}"),
    }

    [
        ("client_hello", client_hello),
        ("server_hello", server_hello),
        ("client_finish", client_finish),
        ("accept", accept),
        ("request_record", request_record),
        ("reply_record", reply_record),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), hex(&v)))
    .collect()
}

// ---------------------------------------------------------------------------------------------
// The text's side: docs/PROTOCOL.md, written again on other crates.

const HEADER_LEN: usize = 7;
const SERVER_HELLO_PREFIX: usize = 122;

fn header(kind: u8) -> Vec<u8> {
    let mut h = b"TRSR".to_vec();
    h.extend_from_slice(&[0x00, 0x01, kind]);
    h
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn opaque(len_bytes: usize, b: &[u8]) -> Vec<u8> {
    let mut out = b.len().to_be_bytes()[8 - len_bytes..].to_vec();
    out.extend_from_slice(b);
    out
}

/// Reads an opaque field of `len_bytes` length bytes at `*at`.
fn take<'a>(buf: &'a [u8], at: &mut usize, len_bytes: usize) -> &'a [u8] {
    let mut n = 0usize;
    for b in &buf[*at..*at + len_bytes] {
        n = n << 8 | usize::from(*b);
    }
    *at += len_bytes;
    let out = &buf[*at..*at + n];
    *at += n;
    out
}

fn expand_label(prk: &Hkdf<Sha256>, label: &str, context: &[u8], len: usize) -> Vec<u8> {
    let full = format!("tresor1 {label}");
    let mut info = (len as u16).to_be_bytes().to_vec();
    info.extend_from_slice(&opaque(1, full.as_bytes()));
    info.extend_from_slice(&opaque(1, context));
    let mut out = vec![0u8; len];
    prk.expand(&info, &mut out).unwrap();
    out
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256>>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn nonce(iv: &[u8], seq: u64) -> [u8; 12] {
    let mut n: [u8; 12] = iv.try_into().unwrap();
    for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

/// Opens `ciphertext` (payload ‖ tag), then seals the plaintext again and checks it gives
/// the same bytes.
fn open_and_reseal(key: &[u8], iv: &[u8], seq: u64, aad: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(key).unwrap();
    let n = nonce(iv, seq);
    let (body, tag) = ciphertext.split_at(ciphertext.len() - 16);
    let tag = aes_gcm::Tag::<aes_gcm::aes::cipher::consts::U16>::try_from(tag).unwrap();
    let mut plain = body.to_vec();
    cipher
        .decrypt_inout_detached(&Nonce::from(n), aad, plain.as_mut_slice().into(), &tag)
        .expect("opens under the key the text derives");
    let mut again = plain.clone();
    let tag2 = cipher
        .encrypt_inout_detached(&Nonce::from(n), aad, again.as_mut_slice().into())
        .unwrap();
    again.extend_from_slice(&tag2);
    assert_eq!(again, ciphertext, "sealing again gives the recorded bytes");
    plain
}

fn record_aad(kind: u8, session_id: &[u8], direction: u8, seq: u64) -> Vec<u8> {
    let mut aad = header(kind);
    aad.extend_from_slice(session_id);
    aad.push(direction);
    aad.extend_from_slice(&seq.to_be_bytes());
    aad
}

fn signed(context: &str, th: &[u8]) -> Vec<u8> {
    let mut m = vec![0x20u8; 64];
    m.extend_from_slice(context.as_bytes());
    m.push(0);
    m.extend_from_slice(th);
    m
}

fn verify_with_cert(cert_der: &[u8], message: &[u8], sig: &[u8]) {
    let cert = Certificate::from_der(cert_der).unwrap();
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&spki).unwrap();
    let sig = p256::ecdsa::DerSignature::try_from(sig).unwrap();
    key.verify(message, &sig)
        .expect("the handshake signature verifies");
}

/// Every intermediate value of §3–§6, computed from the inputs and the messages.
fn intermediates(inputs: &Values, m: &Values) -> Values {
    use p256::elliptic_curve::point::AffineCoordinates as _;
    let ch = unhex(m, "client_hello");
    let sh = unhex(m, "server_hello");
    let cf = unhex(m, "client_finish");
    let accept = unhex(m, "accept");
    let mut out = Values::new();
    let mut put = |k: &str, v: &[u8]| {
        out.insert(k.to_owned(), hex(v));
    };

    // ClientHello: header, random, mode, suites, share (§2.1).
    assert_eq!(&ch[..HEADER_LEN], header(1).as_slice());
    assert_eq!(
        &ch[HEADER_LEN..HEADER_LEN + 32],
        unhex(inputs, "client_random")
    );
    let server_share = &sh[HEADER_LEN + 32 + 16 + 2..SERVER_HELLO_PREFIX];
    let session_id = &sh[HEADER_LEN + 32..HEADER_LEN + 48];
    assert_eq!(session_id, unhex(inputs, "session_id"));

    // ECDH: the x-coordinate of the client's scalar times the server's share.
    let scalar = p256::SecretKey::from_slice(&unhex(inputs, "client_ephemeral_scalar")).unwrap();
    let peer = p256::PublicKey::from_sec1_bytes(server_share).unwrap();
    let point = (peer.to_projective() * *scalar.to_nonzero_scalar()).to_affine();
    let ecdh = point.x().to_vec();
    put("ecdh", &ecdh);

    let sh_prefix = &sh[..SERVER_HELLO_PREFIX];
    let mut transcript = [ch.as_slice(), sh_prefix].concat();
    let th1 = sha256(&[&transcript]);
    put("th1", &th1);
    let (hs_prk, hs) = Hkdf::<Sha256>::extract(Some(b"tresor1 handshake"), &ecdh);
    put("hs_secret", &hs_prk);
    let shs_key = expand_label(&hs, "s hs key", &th1, 32);
    let shs_iv = expand_label(&hs, "s hs iv", &th1, 12);
    let chs_key = expand_label(&hs, "c hs key", &th1, 32);
    let chs_iv = expand_label(&hs, "c hs iv", &th1, 12);
    let s_fin = expand_label(&hs, "s finished", b"", 32);
    let c_fin = expand_label(&hs, "c finished", b"", 32);
    let derived = expand_label(&hs, "derived", b"", 32);
    let (ms_prk, ms) = Hkdf::<Sha256>::extract(Some(&derived), &[0u8; 32]);
    for (k, v) in [
        ("shs_key", &shs_key),
        ("shs_iv", &shs_iv),
        ("chs_key", &chs_key),
        ("chs_iv", &chs_iv),
        ("s_finished_key", &s_fin),
        ("c_finished_key", &c_fin),
        ("derived", &derived),
    ] {
        put(k, v);
    }
    put("ms", &ms_prk);

    // ServerAuth, under the server's handshake key, the ServerHello prefix as AAD (§2.2).
    let mut at = SERVER_HELLO_PREFIX;
    let sealed = take(&sh, &mut at, 2);
    assert_eq!(at, sh.len());
    let server_auth = open_and_reseal(&shs_key, &shs_iv, 0, sh_prefix, sealed);
    let mut at = 0;
    let server_cert = take(&server_auth, &mut at, 3).to_vec();
    let server_sig = take(&server_auth, &mut at, 2).to_vec();
    let server_finished = server_auth[at..].to_vec();
    assert_eq!(server_finished.len(), 32);
    assert_eq!(server_cert, unhex(inputs, "server_certificate"));
    transcript.extend_from_slice(&opaque(3, &server_cert));
    let th2 = sha256(&[&transcript]);
    put("th2", &th2);
    verify_with_cert(
        &server_cert,
        &signed("Tresor v1 server signature", &th2),
        &server_sig,
    );
    put("server_signature", &server_sig);
    transcript.extend_from_slice(&opaque(2, &server_sig));
    let th3 = sha256(&[&transcript]);
    put("th3", &th3);
    assert_eq!(hmac(&s_fin, &th3), server_finished, "server finished");
    put("server_finished", &server_finished);
    transcript.extend_from_slice(&server_finished);

    // ClientAuth, under the client's handshake key, header ‖ session id as AAD (§2.3).
    let cf_prefix = &cf[..HEADER_LEN + 16];
    assert_eq!(&cf[..HEADER_LEN], header(3).as_slice());
    let mut at = HEADER_LEN + 16;
    let sealed = take(&cf, &mut at, 2);
    let client_auth = open_and_reseal(&chs_key, &chs_iv, 0, cf_prefix, sealed);
    let mut at = 0;
    let login = take(&client_auth, &mut at, 1).to_vec();
    let client_cert = take(&client_auth, &mut at, 3).to_vec();
    let client_sig = take(&client_auth, &mut at, 2).to_vec();
    let client_finished = client_auth[at..].to_vec();
    assert_eq!(login, inputs["login"].as_bytes());
    assert_eq!(client_cert, unhex(inputs, "client_certificate"));
    transcript.extend_from_slice(cf_prefix);
    transcript.extend_from_slice(&opaque(1, &login));
    transcript.extend_from_slice(&opaque(3, &client_cert));
    let th4 = sha256(&[&transcript]);
    put("th4", &th4);
    verify_with_cert(
        &client_cert,
        &signed("Tresor v1 client signature", &th4),
        &client_sig,
    );
    put("client_signature", &client_sig);
    transcript.extend_from_slice(&opaque(2, &client_sig));
    let th5 = sha256(&[&transcript]);
    put("th5", &th5);
    assert_eq!(hmac(&c_fin, &th5), client_finished, "client finished");
    put("client_finished", &client_finished);
    transcript.extend_from_slice(&client_finished);
    let th6 = sha256(&[&transcript]);
    put("th6", &th6);

    let cap_key = expand_label(&ms, "c ap key", &th6, 32);
    let cap_iv = expand_label(&ms, "c ap iv", &th6, 12);
    let sap_key = expand_label(&ms, "s ap key", &th6, 32);
    let sap_iv = expand_label(&ms, "s ap iv", &th6, 12);
    for (k, v) in [
        ("cap_key", &cap_key),
        ("cap_iv", &cap_iv),
        ("sap_key", &sap_key),
        ("sap_iv", &sap_iv),
    ] {
        put(k, v);
    }

    // Accept: the server's record 0 (§2.4).
    let mut at = HEADER_LEN + 16;
    let sealed = take(&accept, &mut at, 2);
    let body = open_and_reseal(
        &sap_key,
        &sap_iv,
        0,
        &record_aad(4, session_id, b'S', 0),
        sealed,
    );
    let mut expected = vec![1u8];
    expected.extend_from_slice(
        &inputs["idle_timeout_seconds"]
            .parse::<u64>()
            .unwrap()
            .to_be_bytes(),
    );
    expected.extend_from_slice(&inputs["max_records"].parse::<u64>().unwrap().to_be_bytes());
    assert_eq!(body, expected, "Accept: mode, idle timeout, record limit");

    // The request (client record 0) and its reply (server record 1) (§2.5, §6).
    for (name, kind_dir_seq, key, iv, payload) in [
        (
            "request_record",
            (5u8, b'C', 0u64),
            &cap_key,
            &cap_iv,
            "request_payload",
        ),
        (
            "reply_record",
            (5u8, b'S', 1u64),
            &sap_key,
            &sap_iv,
            "reply_payload",
        ),
    ] {
        let rec = unhex(m, name);
        let (kind, direction, seq) = kind_dir_seq;
        assert_eq!(&rec[..HEADER_LEN], header(kind).as_slice());
        assert_eq!(&rec[HEADER_LEN..HEADER_LEN + 16], session_id);
        assert_eq!(
            rec[HEADER_LEN + 16..HEADER_LEN + 24],
            seq.to_be_bytes(),
            "{name} seq"
        );
        let mut at = HEADER_LEN + 24;
        let sealed = take(&rec, &mut at, 3);
        let plain = open_and_reseal(
            key,
            iv,
            seq,
            &record_aad(kind, session_id, direction, seq),
            sealed,
        );
        assert_eq!(plain, unhex(inputs, payload), "{name}");
    }
    out
}

// ---------------------------------------------------------------------------------------------

#[derive(serde::Serialize, serde::Deserialize)]
struct Vectors {
    description: String,
    inputs: Values,
    messages: Values,
    intermediates: Values,
}

/// Fixed inputs with new certificates (from a throwaway bank CA).
fn new_inputs() -> Values {
    let bank = tresor_core::testkit::TestBank::new("Vector Bank");
    let alice = bank.client("alice.vector");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fill = |b: u8, n: usize| hex(&(0..n).map(|i| b.wrapping_add(i as u8)).collect::<Vec<_>>());
    let mut v = Values::new();
    v.insert(
        "ca_certificate".into(),
        hex(&bank.ca_cert().to_der().unwrap()),
    );
    v.insert(
        "server_certificate".into(),
        hex(&bank.server_cert.to_der().unwrap()),
    );
    v.insert(
        "server_key_pkcs8".into(),
        hex(&bank.server_key.to_pkcs8_der()),
    );
    v.insert(
        "client_certificate".into(),
        hex(&alice.cert.to_der().unwrap()),
    );
    v.insert("client_key_pkcs8".into(), hex(&alice.key.to_pkcs8_der()));
    v.insert("login".into(), "alice.vector".into());
    v.insert("now".into(), now.to_string());
    v.insert("client_random".into(), fill(0x10, 32));
    v.insert("server_random".into(), fill(0x40, 32));
    v.insert("session_id".into(), fill(0x70, 16));
    v.insert("client_ephemeral_scalar".into(), fill(0x01, 32));
    v.insert("server_ephemeral_scalar".into(), fill(0x21, 32));
    v.insert("idle_timeout_seconds".into(), "300".into());
    v.insert("max_records".into(), (1u64 << 24).to_string());
    v.insert("request_payload".into(), hex(br#"{"op":"overview"}"#));
    v.insert(
        "reply_payload".into(),
        hex(br#"{"Err":{"code":"not_allowed","message":"log in first"}}"#),
    );
    v
}

#[test]
fn a_recorded_handshake_replays_byte_for_byte() {
    if std::env::var_os("TRESOR_WRITE_VECTORS").is_some() {
        let inputs = new_inputs();
        let messages = run_tresor(&inputs);
        let intermediates = intermediates(&inputs, &messages);
        let v = Vectors {
            description: "One authenticated Tresor v1 handshake with fixed randoms, session id \
                          and ephemeral scalars, then one request and its reply \
                          (docs/PROTOCOL.md). Hex throughout; test keys only."
                .into(),
            inputs,
            messages,
            intermediates,
        };
        std::fs::create_dir_all(path().parent().unwrap()).unwrap();
        std::fs::write(path(), serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
    }
    let v: Vectors = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    // 1. Tresor, fed the inputs, sends exactly the recorded messages.
    let sent = run_tresor(&v.inputs);
    for (k, recorded) in &v.messages {
        assert_eq!(&sent[k], recorded, "{k} differs from the recorded bytes");
    }
    // 2. The text, written again, derives the recorded intermediates from them.
    assert_eq!(intermediates(&v.inputs, &v.messages), v.intermediates);
    // The certificates are what the bank CA issues: the server's for the channel.
    let ca = Certificate::from_der(&unhex(&v.inputs, "ca_certificate")).unwrap();
    let server = Certificate::from_der(&unhex(&v.inputs, "server_certificate")).unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(v.inputs["now"].parse().unwrap());
    pki::validate_server_certificate(&server, &ca, now).unwrap();
}
