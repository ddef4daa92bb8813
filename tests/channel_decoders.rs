//! Property tests over every decoder of the secure channel, and over the state machines that
//! call them: random bytes, random edits of genuine messages, and random well-formed values.
//! Nothing may panic; what decodes must re-encode to the same bytes (one encoding per
//! message, as the transcript requires); and no edit of a genuine message gets through.
//! The same decoders are cargo-fuzz targets in fuzz/.
#![allow(clippy::unwrap_used)]

use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use proptest::prelude::*;
use tresor_core::channel::client::{self, ClientAuthentication};
use tresor_core::channel::server::{self, ServerSession, SessionParams};
use tresor_core::channel::wire::{
    Accept, AcceptBody, Alert, ClientAuth, ClientFinish, ClientHello, Mode, Record, RecordKind,
    ServerAuth, ServerHello, SessionId,
};
use tresor_core::channel::{AlertCode, ChannelError};
use tresor_core::pki::NoRevocationList;
use tresor_core::testkit::{TestBank, check_decoders_are_canonical};

struct Fixture {
    bank: TestBank,
    client_hello: Vec<u8>,
    server_hello: Vec<u8>,
    client_finish: Vec<u8>,
    accept: Vec<u8>,
    record: Vec<u8>,
    session: Mutex<ServerSession>,
}

/// One genuine handshake and a record, made once.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let bank = TestBank::new("Bank");
        let now = SystemTime::now();
        let (await_hello, client_hello) = client::start(bank.client("alice").auth());
        let (pending, server_hello) =
            server::respond(&client_hello, &bank.server_identity(), now).unwrap();
        let (await_accept, client_finish) = await_hello
            .receive(&server_hello, bank.ca_cert(), now)
            .unwrap();
        let (session, accept) = pending
            .verify(&client_finish, bank.ca_cert(), now)
            .unwrap()
            .accept(&NoRevocationList, SessionParams::default(), now)
            .unwrap();
        let mut c = await_accept.receive(&accept).unwrap();
        let record = c.seal(b"a payment order").unwrap();
        Fixture {
            bank,
            client_hello,
            server_hello,
            client_finish,
            accept,
            record,
            session: Mutex::new(session),
        }
    })
}

fn genuine(which: usize) -> &'static [u8] {
    let f = fixture();
    match which % 5 {
        0 => &f.client_hello,
        1 => &f.server_hello,
        2 => &f.client_finish,
        3 => &f.accept,
        _ => &f.record,
    }
}

/// A genuine message with `edits` applied: (position, new byte), plus an optional cut.
fn edited(which: usize, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut m = genuine(which).to_vec();
    for &(pos, byte) in edits {
        let i = pos % m.len();
        m[i] = byte;
    }
    if let Some(c) = cut {
        m.truncate(c % (m.len() + 1));
    }
    m
}

fn header_then(kind: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = b"TRSR\x00\x01".to_vec();
    m.push(kind);
    m.extend_from_slice(rest);
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_decoders_are_canonical(&bytes);
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic_a_decoder(
        kind in 0u8..9,
        rest in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        check_decoders_are_canonical(&header_then(kind, &rest));
    }

    #[test]
    fn edited_genuine_messages_never_panic_a_decoder(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        check_decoders_are_canonical(&edited(which, &edits, cut));
    }

    #[test]
    fn the_server_refuses_every_edit_of_a_genuine_message(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let f = fixture();
        let m = edited(which, &edits, cut);
        let now = SystemTime::now();
        // As a ClientHello it may be a valid new one (randoms and shares are free); if it
        // is refused, it is with an error, never a panic.
        let _ = server::respond(&m, &f.bank.server_identity(), now);
        // As a record, nothing but the genuine bytes opens, and a refusal changes nothing.
        let mut s = f.session.lock().unwrap();
        let before = s.next_client_seq();
        if m != f.record {
            prop_assert!(s.open(&m, now).is_err());
            prop_assert_eq!(s.next_client_seq(), before);
        }
    }

    #[test]
    fn the_client_refuses_every_edit_of_a_server_hello(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let f = fixture();
        let m = edited(1, &edits, None);
        prop_assume!(m != f.server_hello);
        // A fresh client never accepts the old ServerHello, edited or not; the point is
        // that every path through the checks ends in an error.
        let (await_hello, _) = client::start(ClientAuthentication::Anonymous);
        prop_assert!(await_hello.receive(&m, f.bank.ca_cert(), SystemTime::now()).is_err());
    }

    #[test]
    fn well_formed_values_round_trip(
        random in any::<[u8; 32]>(),
        sid in any::<[u8; 16]>(),
        anonymous in any::<bool>(),
        suites in proptest::collection::vec(any::<u16>(), 1..20),
        share in proptest::collection::vec(any::<u8>(), 65),
        blob in proptest::collection::vec(any::<u8>(), 0..3000),
        short in proptest::collection::vec(any::<u8>(), 0..255),
        finished in any::<[u8; 32]>(),
        seq in any::<u64>(),
        close in any::<bool>(),
        idle in any::<u64>(),
        max in any::<u64>(),
        code in 1u16..14,
    ) {
        let mode = if anonymous { Mode::Anonymous } else { Mode::Authenticated };
        let share: [u8; 65] = share.try_into().unwrap();
        let hello = ClientHello { random, mode, suites, share };
        prop_assert_eq!(ClientHello::decode(&hello.encode()).unwrap(), hello);
        let sh = ServerHello { random, session_id: SessionId(sid), suite: 1, share, encrypted_auth: blob.clone() };
        prop_assert_eq!(ServerHello::decode(&sh.encode()).unwrap(), sh);
        let sa = ServerAuth { certificate: blob.clone(), signature: short.clone(), finished };
        prop_assert_eq!(ServerAuth::decode(&sa.encode()).unwrap(), sa);
        let cf = ClientFinish { session_id: SessionId(sid), encrypted_auth: blob.clone() };
        prop_assert_eq!(ClientFinish::decode(&cf.encode()).unwrap(), cf);
        let ca = ClientAuth { login: short.clone(), certificate: blob.clone(), signature: short, finished };
        prop_assert_eq!(ClientAuth::decode(&ca.encode()).unwrap(), ca);
        let ac = Accept { session_id: SessionId(sid), encrypted: blob.clone() };
        prop_assert_eq!(Accept::decode(&ac.encode()).unwrap(), ac);
        let body = AcceptBody { mode, idle_timeout_seconds: idle, max_records: max };
        prop_assert_eq!(AcceptBody::decode(&body.encode()).unwrap(), body);
        let mut ciphertext = blob;
        ciphertext.extend_from_slice(&[0; 16]);
        let kind = if close { RecordKind::Close } else { RecordKind::Data };
        let record = Record { kind, session_id: SessionId(sid), seq, ciphertext };
        prop_assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        let alert = Alert { code: AlertCode::from_u16(code).unwrap() };
        prop_assert_eq!(Alert::decode(&alert.encode()).unwrap(), alert);
        prop_assert_eq!(
            ServerHello::decode(&alert.encode()),
            Err(ChannelError::PeerAlert(alert.code))
        );
    }
}
