//! One test per attack on the secure channel (docs/PROTOCOL.md §9), on the IO-free state
//! machines. Each attack must fail with its specific error and leave the target's state as
//! it was, which the tests show by delivering the genuine message afterwards.
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tresor_core::channel::client::{
    self, AwaitServerHello, ClientAuthentication, ClientSession, Reply,
};
use tresor_core::channel::server::{self, PendingHandshake, Request, ServerSession, SessionParams};
use tresor_core::channel::wire::{self, ClientHello, Record};
use tresor_core::channel::{AlertCode, ChannelError, HandshakeSigner, Mode};
use tresor_core::pki::{CertError, NoRevocationList};
use tresor_core::signer::SignError;
use tresor_core::testkit::{TestBank, TestClient};
use tresor_core::x509_cert::serial_number::SerialNumber;

fn now() -> SystemTime {
    SystemTime::now()
}

/// The messages of one handshake, for replaying.
struct Flight {
    client_hello: Vec<u8>,
    server_hello: Vec<u8>,
    client_finish: Vec<u8>,
    accept: Vec<u8>,
}

fn establish_with(
    bank: &TestBank,
    auth: ClientAuthentication,
    params: SessionParams,
) -> (ClientSession, ServerSession, Flight) {
    let (await_hello, client_hello) = client::start(auth);
    let (pending, server_hello) =
        server::respond(&client_hello, &bank.server_identity(), now()).unwrap();
    let (await_accept, client_finish) = await_hello
        .receive(&server_hello, bank.ca_cert(), now())
        .unwrap();
    let verified = pending
        .verify(&client_finish, bank.ca_cert(), now())
        .unwrap();
    let (server_session, accept) = verified.accept(&NoRevocationList, params, now()).unwrap();
    let client_session = await_accept.receive(&accept).unwrap();
    (
        client_session,
        server_session,
        Flight {
            client_hello,
            server_hello,
            client_finish,
            accept,
        },
    )
}

fn establish(
    bank: &TestBank,
    auth: ClientAuthentication,
) -> (ClientSession, ServerSession, Flight) {
    establish_with(bank, auth, SessionParams::default())
}

/// Runs a handshake up to ClientFinish: the pending handshake and the ClientFinish.
fn up_to_finish(bank: &TestBank, auth: ClientAuthentication) -> (PendingHandshake, Vec<u8>) {
    let (await_hello, client_hello) = client::start(auth);
    let (pending, server_hello) =
        server::respond(&client_hello, &bank.server_identity(), now()).unwrap();
    let (_, finish) = await_hello
        .receive(&server_hello, bank.ca_cert(), now())
        .unwrap();
    (pending, finish)
}

/// What the server keeps about a session, to show an attack changed none of it.
fn state(s: &ServerSession) -> (u64, SystemTime, bool) {
    (s.next_client_seq(), s.last_activity(), s.is_closed())
}

fn data(request: Request) -> (Vec<u8>, server::ReplySlot) {
    match request {
        Request::Data(payload, slot) => (payload.to_vec(), slot),
        Request::Close(_) => panic!("expected data"),
    }
}

/// One request and its reply, checked at both ends.
fn round_trip(c: &mut ClientSession, s: &mut ServerSession, payload: &[u8]) {
    let record = c.seal(payload).unwrap();
    let (got, slot) = data(s.open(&record, now()).unwrap());
    assert_eq!(got, payload);
    let reply = s.seal_reply(slot, &[payload, b" ok"].concat()).unwrap();
    assert_eq!(
        c.open(&reply).unwrap(),
        Reply::Data([payload, b" ok"].concat().into())
    );
}

/// Sends `attack` to the server and checks that it fails with `expected`, changes nothing,
/// and that the genuine `record` is still accepted afterwards.
fn refused_then_genuine(
    s: &mut ServerSession,
    attack: &[u8],
    expected: ChannelError,
    genuine: &[u8],
) {
    let before = state(s);
    assert_eq!(s.open(attack, now()).unwrap_err(), expected);
    assert_eq!(state(s), before, "a refused record changed the session");
    s.open(genuine, now()).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The happy paths.

#[test]
fn authenticated_and_anonymous_sessions_carry_requests_and_close() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let (mut c, mut s, _) = establish(&bank, alice.auth());
    assert_eq!(s.mode(), Mode::Authenticated);
    assert_eq!(c.mode(), Mode::Authenticated);
    let who = s.client().unwrap();
    assert_eq!(who.login.as_str(), "alice");
    assert_eq!(&who.serial, alice.cert.tbs_certificate().serial_number());
    for i in 0..3u8 {
        round_trip(&mut c, &mut s, &[i; 100]);
    }
    assert_eq!(s.next_client_seq(), 3);

    let close = c.seal_close().unwrap();
    let Request::Close(slot) = s.open(&close, now()).unwrap() else {
        panic!("expected close")
    };
    assert_eq!(c.open(&s.seal_close(slot)).unwrap(), Reply::Closed);
    assert!(s.is_closed());

    let (mut c, mut s, _) = establish(&bank, ClientAuthentication::Anonymous);
    assert_eq!(s.mode(), Mode::Anonymous);
    assert!(s.client().is_none());
    round_trip(&mut c, &mut s, b"login alice");
}

#[test]
fn every_handshake_has_its_own_keys() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let (mut c1, _, f1) = establish(&bank, alice.auth());
    let (mut c2, _, f2) = establish(&bank, alice.auth());
    assert_ne!(c1.id(), c2.id());
    assert_ne!(
        f1.client_hello[7..39],
        f2.client_hello[7..39],
        "client randoms"
    );
    assert_ne!(
        f1.client_hello[45..],
        f2.client_hello[45..],
        "client shares"
    );
    // The same plaintext at the same seq seals differently under each session's keys.
    assert_ne!(
        c1.seal(b"same").unwrap()[34..],
        c2.seal(b"same").unwrap()[34..]
    );
}

// ---------------------------------------------------------------------------------------------
// Handshake messages replayed.

#[test]
fn a_replayed_client_hello_gets_a_new_session_that_the_replayer_cannot_finish() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let (await_hello, hello) = client::start(alice.auth());
    let (pending, server_hello) = server::respond(&hello, &bank.server_identity(), now()).unwrap();
    // An eavesdropper replays the ClientHello: the server answers with a fresh session...
    let (replayed, replay_hello) = server::respond(&hello, &bank.server_identity(), now()).unwrap();
    assert_ne!(replayed.session_id(), pending.session_id());
    assert_ne!(
        replay_hello[39..],
        server_hello[39..],
        "fresh random, session id and share"
    );

    let (await_accept, finish) = await_hello
        .receive(&server_hello, bank.ca_cert(), now())
        .unwrap();
    // ...which the genuine ClientFinish cannot complete, by id or by keys.
    let refused = replayed.verify(&finish, bank.ca_cert(), now()).unwrap_err();
    assert_eq!(refused.error, ChannelError::UnknownSession);
    let mut moved = finish.clone();
    moved[7..23].copy_from_slice(&replay_hello[39..55]);
    let refused = refused
        .pending
        .verify(&moved, bank.ca_cert(), now())
        .unwrap_err();
    assert_eq!(
        refused.error,
        ChannelError::BadRecord("client handshake does not decrypt")
    );

    // The genuine handshake is untouched.
    let (_, accept) = pending
        .verify(&finish, bank.ca_cert(), now())
        .unwrap()
        .accept(&NoRevocationList, SessionParams::default(), now())
        .unwrap();
    await_accept.receive(&accept).unwrap();
}

#[test]
fn a_replayed_client_finish_is_refused_in_another_handshake() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let (_, _, old) = establish(&bank, alice.auth());
    let (pending, finish) = up_to_finish(&bank, alice.auth());
    // The old ClientFinish names the old session, and re-labelled it does not decrypt.
    let refused = pending
        .verify(&old.client_finish, bank.ca_cert(), now())
        .unwrap_err();
    assert_eq!(refused.error, ChannelError::UnknownSession);
    let mut relabelled = old.client_finish.clone();
    relabelled[7..23].copy_from_slice(&refused.pending.session_id().0);
    let refused = refused
        .pending
        .verify(&relabelled, bank.ca_cert(), now())
        .unwrap_err();
    assert!(matches!(refused.error, ChannelError::BadRecord(_)));
    refused
        .pending
        .verify(&finish, bank.ca_cert(), now())
        .unwrap();
}

#[test]
fn a_replayed_server_hello_or_accept_is_refused_by_the_client() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let (_, _, old) = establish(&bank, alice.auth());
    let (await_hello, _) = client::start(alice.auth());
    // The old ServerHello was keyed to the old client share.
    let err = await_hello
        .receive(&old.server_hello, bank.ca_cert(), now())
        .unwrap_err();
    assert!(matches!(err, ChannelError::BadRecord(_)), "{err:?}");

    let (await_hello, hello) = client::start(alice.auth());
    let (_, server_hello) = server::respond(&hello, &bank.server_identity(), now()).unwrap();
    let (await_accept, _) = await_hello
        .receive(&server_hello, bank.ca_cert(), now())
        .unwrap();
    assert_eq!(
        await_accept.receive(&old.accept).unwrap_err(),
        ChannelError::UnknownSession
    );
}

#[test]
fn a_handshake_left_pending_too_long_expires() {
    let bank = TestBank::new("Bank");
    let (pending, finish) = up_to_finish(&bank, ClientAuthentication::Anonymous);
    let late = now() + server::HANDSHAKE_TIMEOUT + Duration::from_secs(1);
    let refused = pending.verify(&finish, bank.ca_cert(), late).unwrap_err();
    assert_eq!(refused.error, ChannelError::UnknownSession);
}

#[test]
fn a_pending_handshake_exported_and_restored_finishes_and_keeps_its_deadline() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    for auth in [alice.auth(), ClientAuthentication::Anonymous] {
        let (await_hello, client_hello) = client::start(auth);
        let (pending, server_hello) =
            server::respond(&client_hello, &bank.server_identity(), now()).unwrap();
        let (await_accept, finish) = await_hello
            .receive(&server_hello, bank.ca_cert(), now())
            .unwrap();
        let exported = pending.export();
        // Another instance: the deadline travels with it.
        let late = now() + server::HANDSHAKE_TIMEOUT + Duration::from_secs(1);
        let restored = PendingHandshake::restore(&exported).unwrap();
        assert_eq!(restored.session_id(), pending.session_id());
        assert!(restored.is_expired(late));
        let refused = restored.verify(&finish, bank.ca_cert(), late).unwrap_err();
        assert_eq!(refused.error, ChannelError::UnknownSession);
        // Cut short anywhere, or of another version, it is refused.
        for cut in [0, 1, 60, 134] {
            assert!(
                PendingHandshake::restore(&exported[..cut]).is_err(),
                "{cut}"
            );
        }
        let mut other = exported.to_vec();
        other[0] ^= 0xff;
        assert!(PendingHandshake::restore(&other).is_err());
        // In time, it checks the ClientFinish as the original would.
        let verified = PendingHandshake::restore(&exported)
            .unwrap()
            .verify(&finish, bank.ca_cert(), now())
            .unwrap_or_else(|r| panic!("{}", r.error));
        let (mut s, accept) = verified
            .accept(&NoRevocationList, SessionParams::default(), now())
            .unwrap();
        let mut c = await_accept.receive(&accept).unwrap();
        round_trip(&mut c, &mut s, b"on another instance");
        drop(pending);
    }
}

// ---------------------------------------------------------------------------------------------
// Session records.

#[test]
fn a_replayed_record_is_refused() {
    let bank = TestBank::new("Bank");
    let (mut c, mut s, _) = establish(&bank, bank.client("alice").auth());
    let first = c.seal(b"pay 100").unwrap();
    let (_, slot) = data(s.open(&first, now()).unwrap());
    c.open(&s.seal_reply(slot, b"done").unwrap()).unwrap();
    let second = c.seal(b"balance").unwrap();
    refused_then_genuine(
        &mut s,
        &first,
        ChannelError::BadRecord("out of sequence"),
        &second,
    );
    // And once more after the genuine one.
    assert_eq!(
        s.open(&second, now()).unwrap_err(),
        ChannelError::BadRecord("out of sequence")
    );
}

#[test]
fn a_reordered_or_skipped_record_is_refused() {
    let bank = TestBank::new("Bank");
    let (mut c, mut s, _) = establish(&bank, bank.client("alice").auth());
    // The client only ever has one request in flight, so build later seqs by hand: a
    // record with seq 1 or 5 while the server expects 0.
    let genuine = c.seal(b"first").unwrap();
    for seq in [1u64, 5, u64::MAX] {
        let mut ahead = genuine.clone();
        ahead[23..31].copy_from_slice(&seq.to_be_bytes());
        let before = state(&s);
        assert_eq!(
            s.open(&ahead, now()).unwrap_err(),
            ChannelError::BadRecord("out of sequence")
        );
        assert_eq!(state(&s), before);
    }
    s.open(&genuine, now()).unwrap();
}

#[test]
fn a_dropped_record_leaves_a_gap_that_is_refused() {
    let bank = TestBank::new("Bank");
    let (mut c, mut s, _) = establish(&bank, bank.client("alice").auth());
    round_trip(&mut c, &mut s, b"zero");
    // Record 1 is held back on the way and the attacker forwards a record at seq 2 (built
    // from record 1, since the client never seals two at once): the gap is refused, and
    // record 1 is still accepted when it arrives.
    let r1 = c.seal(b"held back").unwrap();
    let mut r2 = r1.clone();
    r2[23..31].copy_from_slice(&2u64.to_be_bytes());
    refused_then_genuine(&mut s, &r2, ChannelError::BadRecord("out of sequence"), &r1);
}

#[test]
fn a_truncated_record_is_refused() {
    let bank = TestBank::new("Bank");
    let (mut c, mut s, _) = establish(&bank, bank.client("alice").auth());
    let genuine = c.seal(b"a payment order").unwrap();
    for len in [0, 3, 7, 22, 30, 33, 34, genuine.len() - 1] {
        let before = state(&s);
        let err = s.open(&genuine[..len], now()).unwrap_err();
        assert!(matches!(err, ChannelError::Decode(_)), "{len}: {err:?}");
        assert_eq!(state(&s), before);
    }
    // A shortened ciphertext with a consistent length field fails authentication.
    let mut short = genuine[..genuine.len() - 1].to_vec();
    let len = (short.len() - wire::RECORD_OVERHEAD) as u32;
    short[31..34].copy_from_slice(&len.to_be_bytes()[1..]);
    refused_then_genuine(
        &mut s,
        &short,
        ChannelError::BadRecord("does not decrypt"),
        &genuine,
    );
}

#[test]
fn a_record_altered_in_any_byte_is_refused() {
    let bank = TestBank::new("Bank");
    let (mut c, mut s, _) = establish(&bank, bank.client("alice").auth());
    let genuine = c.seal(b"amount=100.00 UAH").unwrap();
    for i in 0..genuine.len() {
        for flip in [0x01u8, 0x80] {
            let mut altered = genuine.clone();
            altered[i] ^= flip;
            let before = state(&s);
            let err = s.open(&altered, now()).unwrap_err();
            // Which check catches it depends on the field; that one does is what counts.
            assert!(
                matches!(
                    err,
                    ChannelError::Decode(_)
                        | ChannelError::ProtocolVersion(_)
                        | ChannelError::UnexpectedMessage(_)
                        | ChannelError::UnknownSession
                        | ChannelError::BadRecord(_)
                ),
                "byte {i}: {err:?}"
            );
            assert_eq!(state(&s), before, "byte {i}");
        }
    }
    s.open(&genuine, now()).unwrap();
}

#[test]
fn a_record_reflected_to_its_sender_is_refused() {
    let bank = TestBank::new("Bank");
    let (mut c, mut s, _) = establish(&bank, bank.client("alice").auth());
    let r0 = c.seal(b"zero").unwrap();
    let (_, slot) = data(s.open(&r0, now()).unwrap());
    let reply = s.seal_reply(slot, b"reply one").unwrap();
    // The server's reply carries seq 1, the very seq the server expects next from the
    // client: only the direction in the keys and AAD stops it.
    assert_eq!(u64::from_be_bytes(reply[23..31].try_into().unwrap()), 1);
    let before = state(&s);
    assert_eq!(
        s.open(&reply, now()).unwrap_err(),
        ChannelError::BadRecord("does not decrypt")
    );
    assert_eq!(state(&s), before);
    // Reflecting the client's own record back to it fails too, and the genuine reply opens.
    assert_eq!(
        c.open(&r0).unwrap_err(),
        ChannelError::BadRecord("reply out of sequence")
    );
    let mut r0_as_reply = r0.clone();
    r0_as_reply[23..31].copy_from_slice(&1u64.to_be_bytes());
    assert_eq!(
        c.open(&r0_as_reply).unwrap_err(),
        ChannelError::BadRecord("reply does not decrypt")
    );
    c.open(&reply).unwrap();
}

#[test]
fn a_record_moved_to_another_session_is_refused() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let (mut c1, _, _) = establish(&bank, alice.auth());
    let (mut c2, mut s2, _) = establish(&bank, alice.auth());
    let r1 = c1.seal(b"for session one").unwrap();
    let genuine = c2.seal(b"for session two").unwrap();
    // As sent, it names session one.
    let before = state(&s2);
    assert_eq!(
        s2.open(&r1, now()).unwrap_err(),
        ChannelError::UnknownSession
    );
    assert_eq!(state(&s2), before);
    // Relabelled with session two's id, it does not decrypt there.
    let mut moved = r1.clone();
    moved[7..23].copy_from_slice(&c2.id().0);
    refused_then_genuine(
        &mut s2,
        &moved,
        ChannelError::BadRecord("does not decrypt"),
        &genuine,
    );
}

#[test]
fn a_reply_altered_or_from_another_session_is_refused_by_the_client() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let (mut c, mut s, _) = establish(&bank, alice.auth());
    let (mut c_other, mut s_other, _) = establish(&bank, alice.auth());
    let r = c.seal(b"balance").unwrap();
    let (_, slot) = data(s.open(&r, now()).unwrap());
    let reply = s.seal_reply(slot, b"1000.00").unwrap();
    let r_other = c_other.seal(b"balance").unwrap();
    let (_, slot) = data(s_other.open(&r_other, now()).unwrap());
    let other_reply = s_other.seal_reply(slot, b"0.00").unwrap();

    assert_eq!(
        c.open(&other_reply).unwrap_err(),
        ChannelError::BadRecord("reply for another session")
    );
    let mut tampered = reply.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(
        c.open(&tampered).unwrap_err(),
        ChannelError::BadRecord("reply does not decrypt")
    );
    let Reply::Data(got) = c.open(&reply).unwrap() else {
        panic!("expected data")
    };
    assert_eq!(got.as_slice(), b"1000.00");
}

#[test]
fn a_record_after_close_is_refused() {
    let bank = TestBank::new("Bank");
    let (mut c, mut s, _) = establish(&bank, bank.client("alice").auth());
    round_trip(&mut c, &mut s, b"one");
    let close = c.seal_close().unwrap();
    let Request::Close(slot) = s.open(&close, now()).unwrap() else {
        panic!("expected close")
    };
    c.open(&s.seal_close(slot)).unwrap();
    // The client will not seal more, and the server refuses anything sealed before.
    assert_eq!(
        c.seal(b"more").unwrap_err(),
        ChannelError::UnexpectedMessage("the session is closed")
    );
    assert_eq!(
        s.open(&close, now()).unwrap_err(),
        ChannelError::UnknownSession
    );
    let mut next = close.clone();
    next[6] = wire::MessageType::Data as u8;
    next[23..31].copy_from_slice(&2u64.to_be_bytes());
    assert_eq!(
        s.open(&next, now()).unwrap_err(),
        ChannelError::UnknownSession
    );
}

#[test]
fn an_idle_session_expires() {
    let bank = TestBank::new("Bank");
    let params = SessionParams {
        idle_timeout: Duration::from_secs(60),
        ..SessionParams::default()
    };
    let (mut c, mut s, _) = establish_with(&bank, ClientAuthentication::Anonymous, params);
    assert_eq!(c.idle_timeout_seconds(), 60);
    let record = c.seal(b"late").unwrap();
    let late = now() + Duration::from_secs(61);
    assert!(s.is_expired(late));
    assert_eq!(
        s.open(&record, late).unwrap_err(),
        ChannelError::UnknownSession
    );
    s.open(&record, now()).unwrap();
}

#[test]
fn a_session_expires_at_its_lifetime_however_active() {
    let bank = TestBank::new("Bank");
    let params = SessionParams {
        idle_timeout: Duration::from_secs(60),
        max_lifetime: Duration::from_secs(100),
        ..SessionParams::default()
    };
    let (mut c, mut s, _) = establish_with(&bank, ClientAuthentication::Anonymous, params);
    // Active every 50 s: never idle, yet over at 100 s, and still over once exported and
    // restored on another instance.
    let record = c.seal(b"at 50 s").unwrap();
    s.open(&record, now() + Duration::from_secs(50)).unwrap();
    let restored = ServerSession::restore(
        &s.export(),
        s.next_client_seq(),
        now() + Duration::from_secs(50),
    )
    .unwrap();
    let late = now() + Duration::from_secs(101);
    assert!(!restored.is_expired(now() + Duration::from_secs(99)));
    assert!(restored.is_expired(late));
    assert!(s.is_expired(late));
}

#[test]
fn the_record_limit_forces_a_new_handshake() {
    let bank = TestBank::new("Bank");
    let params = SessionParams {
        max_records: 4,
        ..SessionParams::default()
    };
    let (mut c, mut s, _) = establish_with(&bank, ClientAuthentication::Anonymous, params);
    // Client seqs 0, 1, 2 get replies 1, 2, 3; seq 3 would need a reply at seq 4.
    for i in 0..3u8 {
        round_trip(&mut c, &mut s, &[i]);
    }
    assert_eq!(
        c.seal(b"one too many").unwrap_err(),
        ChannelError::TooManyRecords
    );
    // A client that ignores its own limit is refused by the server, before any decryption.
    let mut r = Record {
        kind: wire::RecordKind::Data,
        session_id: s.id(),
        seq: 3,
        ciphertext: vec![0; 16],
    }
    .encode();
    assert_eq!(s.open(&r, now()).unwrap_err(), ChannelError::TooManyRecords);
    r[23..31].copy_from_slice(&4u64.to_be_bytes());
    assert_eq!(
        s.open(&r, now()).unwrap_err(),
        ChannelError::BadRecord("out of sequence")
    );
}

// ---------------------------------------------------------------------------------------------
// Certificates.

fn finish_error(bank: &TestBank, auth: ClientAuthentication) -> ChannelError {
    let (pending, finish) = up_to_finish(bank, auth);
    pending
        .verify(&finish, bank.ca_cert(), now())
        .unwrap_err()
        .error
}

#[test]
fn an_expired_client_certificate_is_refused() {
    let bank = TestBank::new("Bank");
    let year = Duration::from_secs(365 * 24 * 3600);
    let old = bank.client_at("alice", now() - 2 * year, year);
    let err = finish_error(&bank, old.auth());
    assert_eq!(err, ChannelError::BadCertificate(CertError::Expired));
    assert_eq!(err.alert(), AlertCode::CertificateExpired);
}

#[test]
fn a_revoked_client_certificate_is_refused() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let serial = alice.cert.tbs_certificate().serial_number().clone();
    let (pending, finish) = up_to_finish(&bank, alice.auth());
    let verified = pending.verify(&finish, bank.ca_cert(), now()).unwrap();
    let revoked = |s: &SerialNumber| *s == serial;
    let err = verified
        .accept(&revoked, SessionParams::default(), now())
        .unwrap_err();
    assert_eq!(err, ChannelError::BadCertificate(CertError::Revoked));
    assert_eq!(err.alert(), AlertCode::CertificateRevoked);
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let bank = TestBank::new("Bank");
    let impostor = TestBank::new("Other Bank").client("alice");
    assert_eq!(
        finish_error(&bank, impostor.auth()),
        ChannelError::BadCertificate(CertError::NotIssuedByBank)
    );
}

#[test]
fn a_certificate_for_another_login_is_refused() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    // Bob presents Alice's certificate and signs with her key, but claims to be bob: the
    // certificate binds the login, so this misbinding is refused.
    let misbound = TestClient {
        login: "bob".parse().unwrap(),
        ..alice.clone()
    };
    assert_eq!(
        finish_error(&bank, misbound.auth()),
        ChannelError::BadCertificate(CertError::WrongLogin {
            expected: "bob".into(),
            found: "alice".into()
        })
    );
}

#[test]
fn a_certificate_with_the_wrong_purpose_is_refused() {
    let bank = TestBank::new("Bank");
    // The server's own certificate (serverAuth, CN=localhost) and key, used as a client's.
    let server_as_client = TestClient {
        login: "localhost".parse().unwrap(),
        key: bank.server_key.clone(),
        cert: bank.server_cert.clone(),
    };
    assert_eq!(
        finish_error(&bank, server_as_client.auth()),
        ChannelError::BadCertificate(CertError::WrongPurpose)
    );
    // And a client certificate offered as the server's is refused by the client.
    let alice = bank.client("alice");
    let fake = tresor_core::channel::server::ServerIdentity::new(
        tresor_core::x509_cert::der::Encode::to_der(&alice.cert).unwrap(),
        Box::new(alice.key.clone()),
    );
    let (await_hello, hello) = client::start(ClientAuthentication::Anonymous);
    let (_, server_hello) = server::respond(&hello, &fake, now()).unwrap();
    assert_eq!(
        await_hello
            .receive(&server_hello, bank.ca_cert(), now())
            .unwrap_err(),
        ChannelError::BadCertificate(CertError::WrongPurpose)
    );
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let bank = TestBank::new("Bank");
    let impostor = TestBank::new("Impostor");
    let (await_hello, hello) = client::start(ClientAuthentication::Anonymous);
    let (_, server_hello) = server::respond(&hello, &impostor.server_identity(), now()).unwrap();
    assert_eq!(
        await_hello
            .receive(&server_hello, bank.ca_cert(), now())
            .unwrap_err(),
        ChannelError::BadCertificate(CertError::NotIssuedByBank)
    );
}

// ---------------------------------------------------------------------------------------------
// Signatures.

/// Signs the first transcript it sees, then replays that signature for every later one.
struct ReplayingSigner {
    inner: Box<dyn HandshakeSigner>,
    first: Mutex<Option<Vec<u8>>>,
}

impl HandshakeSigner for ReplayingSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut first = self.first.lock().unwrap();
        Ok(first
            .get_or_insert_with(|| self.inner.sign(message).unwrap())
            .clone())
    }
}

#[test]
fn a_client_signature_over_another_transcript_is_refused() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let signer = std::sync::Arc::new(ReplayingSigner {
        inner: Box::new(alice.key.clone()),
        first: Mutex::new(None),
    });
    struct Shared(std::sync::Arc<ReplayingSigner>);
    impl HandshakeSigner for Shared {
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
            self.0.sign(message)
        }
    }
    let auth = || ClientAuthentication::Key {
        login: alice.login.clone(),
        certificate: tresor_core::x509_cert::der::Encode::to_der(&alice.cert).unwrap(),
        signer: Box::new(Shared(signer.clone())),
    };
    // The first handshake is genuine; the second carries the first one's signature.
    establish(&bank, auth());
    assert_eq!(finish_error(&bank, auth()), ChannelError::BadSignature);
}

#[test]
fn a_server_signature_over_another_transcript_is_refused() {
    let bank = TestBank::new("Bank");
    let identity = tresor_core::channel::server::ServerIdentity::new(
        tresor_core::x509_cert::der::Encode::to_der(&bank.server_cert).unwrap(),
        Box::new(ReplayingSigner {
            inner: Box::new(bank.server_key.clone()),
            first: Mutex::new(None),
        }),
    );
    let run = || {
        let (await_hello, hello) = client::start(ClientAuthentication::Anonymous);
        let (_, server_hello) = server::respond(&hello, &identity, now()).unwrap();
        await_hello
            .receive(&server_hello, bank.ca_cert(), now())
            .map(|_| ())
    };
    run().unwrap();
    assert_eq!(run().unwrap_err(), ChannelError::BadSignature);
}

// ---------------------------------------------------------------------------------------------
// Downgrades and bad parameters.

fn respond_err(bank: &TestBank, hello: &[u8]) -> ChannelError {
    server::respond(hello, &bank.server_identity(), now()).unwrap_err()
}

#[test]
fn a_downgraded_or_unknown_version_is_refused() {
    let bank = TestBank::new("Bank");
    let (_, hello) = client::start(ClientAuthentication::Anonymous);
    for version in [0u16, 2, 0x0100, 0xffff] {
        let mut other = hello.clone();
        other[4..6].copy_from_slice(&version.to_be_bytes());
        let err = respond_err(&bank, &other);
        assert_eq!(err, ChannelError::ProtocolVersion(version));
        assert_eq!(err.alert(), AlertCode::ProtocolVersion);
    }
    // A ServerHello claiming another version is refused by the client.
    let (await_hello, hello) = client::start(ClientAuthentication::Anonymous);
    let (_, mut server_hello) = server::respond(&hello, &bank.server_identity(), now()).unwrap();
    server_hello[5] = 0;
    assert_eq!(
        await_hello
            .receive(&server_hello, bank.ca_cert(), now())
            .unwrap_err(),
        ChannelError::ProtocolVersion(0)
    );
}

#[test]
fn a_client_hello_rewritten_in_flight_is_caught_by_the_server_signature() {
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    // Downgrading the mode (authenticated → anonymous) or the suite list in flight: the
    // server answers what it saw, and signs it, so the client sees a signature that does
    // not cover its own ClientHello.
    let rewrites: [fn(&mut Vec<u8>); 2] = [
        |h: &mut Vec<u8>| h[39] = Mode::Anonymous as u8,
        |h: &mut Vec<u8>| {
            // Offer suites [1, 2] instead of [1]: same length budget, different list.
            let mut hello = ClientHello::decode(h).unwrap();
            hello.suites = vec![0x0001, 0x0002];
            *h = hello.encode();
        },
    ];
    for rewrite in rewrites {
        let (await_hello, mut hello) = client::start(alice.auth());
        rewrite(&mut hello);
        let (_, server_hello) = server::respond(&hello, &bank.server_identity(), now()).unwrap();
        let err = await_hello
            .receive(&server_hello, bank.ca_cert(), now())
            .unwrap_err();
        // TH1 differs, so the keys differ and the server's part does not even decrypt.
        assert_eq!(
            err,
            ChannelError::BadRecord("server handshake does not decrypt")
        );
    }
    // No suite in common.
    let (_, hello) = client::start(alice.auth());
    let mut h = ClientHello::decode(&hello).unwrap();
    h.suites = vec![0x0002, 0x1301];
    assert_eq!(respond_err(&bank, &h.encode()), ChannelError::NoCommonSuite);
}

#[test]
fn an_invalid_curve_point_is_refused() {
    let bank = TestBank::new("Bank");
    let (_, hello) = client::start(ClientAuthentication::Anonymous);
    let genuine = ClientHello::decode(&hello).unwrap();
    let mut off_curve = genuine.share;
    off_curve[64] ^= 1; // y + 1: not on P-256
    let mut compressed = [0u8; 65];
    compressed[..33].copy_from_slice(&genuine.share[..33]);
    compressed[0] = 0x02;
    let mut too_big = [0xffu8; 65]; // coordinates not below p
    too_big[0] = 0x04;
    for share in [off_curve, [0; 65], compressed, too_big] {
        let bad = ClientHello {
            share,
            ..genuine.clone()
        };
        let err = respond_err(&bank, &bad.encode());
        assert_eq!(
            err,
            ChannelError::IllegalParameter("key share is not a P-256 point")
        );
        assert_eq!(err.alert(), AlertCode::IllegalParameter);
    }
    // And an invalid server share is refused by the client.
    let (await_hello, hello) = client::start(ClientAuthentication::Anonymous);
    let (_, mut server_hello) = server::respond(&hello, &bank.server_identity(), now()).unwrap();
    server_hello[wire::ServerHello::PREFIX_LEN - 1] ^= 1;
    assert_eq!(
        await_hello
            .receive(&server_hello, bank.ca_cert(), now())
            .unwrap_err(),
        ChannelError::IllegalParameter("key share is not a P-256 point")
    );
}

#[test]
fn a_client_finish_altered_in_any_byte_is_refused_and_the_genuine_one_still_works() {
    let bank = TestBank::new("Bank");
    let (mut pending, finish) = up_to_finish(&bank, bank.client("alice").auth());
    for i in 0..finish.len() {
        let mut altered = finish.clone();
        altered[i] ^= 0x01;
        let refused = pending.verify(&altered, bank.ca_cert(), now()).unwrap_err();
        pending = *refused.pending;
    }
    pending.verify(&finish, bank.ca_cert(), now()).unwrap();
}

#[test]
fn the_wrong_message_for_the_state_is_refused() {
    let bank = TestBank::new("Bank");
    let (_, _, flight) = establish(&bank, ClientAuthentication::Anonymous);
    // A ClientFinish where a ClientHello belongs, and the reverse.
    assert!(matches!(
        respond_err(&bank, &flight.client_finish),
        ChannelError::UnexpectedMessage(_)
    ));
    let (pending, _) = up_to_finish(&bank, ClientAuthentication::Anonymous);
    let refused = pending
        .verify(&flight.client_hello, bank.ca_cert(), now())
        .unwrap_err();
    assert!(matches!(refused.error, ChannelError::UnexpectedMessage(_)));
    // A server Alert in place of ServerHello is reported as the server's refusal.
    let (await_hello, _): (AwaitServerHello, _) = client::start(ClientAuthentication::Anonymous);
    let alert = ChannelError::NoCommonSuite.alert_message();
    assert_eq!(
        await_hello
            .receive(&alert, bank.ca_cert(), now())
            .unwrap_err(),
        ChannelError::PeerAlert(AlertCode::NoCommonSuite)
    );
}

#[test]
fn an_authenticated_finish_without_its_certificate_or_signature_is_an_illegal_parameter() {
    struct Silent;
    impl HandshakeSigner for Silent {
        fn sign(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
            Ok(Vec::new())
        }
    }
    let bank = TestBank::new("Bank");
    let alice = bank.client("alice");
    let cases: [(Vec<u8>, Box<dyn HandshakeSigner>); 2] = [
        (Vec::new(), Box::new(alice.key.clone())),
        (
            tresor_core::x509_cert::der::Encode::to_der(&alice.cert).unwrap(),
            Box::new(Silent),
        ),
    ];
    for (certificate, signer) in cases {
        let missing = if certificate.is_empty() {
            "certificate"
        } else {
            "signature"
        };
        let auth = ClientAuthentication::Key {
            login: alice.login.clone(),
            certificate,
            signer,
        };
        assert_eq!(
            finish_error(&bank, auth).alert(),
            AlertCode::IllegalParameter,
            "without its {missing}"
        );
    }
}
