//! The server's session: any bytes as a record are refused without a panic and without
//! changing the session.
#![no_main]

use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use tresor_core::channel::client;
use tresor_core::channel::server::{self, ServerSession, SessionParams};
use tresor_core::pki::NoRevocationList;
use tresor_core::testkit::TestBank;

fn session() -> &'static Mutex<ServerSession> {
    static S: OnceLock<Mutex<ServerSession>> = OnceLock::new();
    S.get_or_init(|| {
        let bank = TestBank::new("Fuzz Bank");
        let now = SystemTime::now();
        let (await_hello, hello) = client::start(bank.client("alice").auth());
        let (pending, server_hello) =
            server::respond(&hello, &bank.server_identity(), now).expect("hello");
        let (_, finish) = await_hello
            .receive(&server_hello, bank.ca_cert(), now)
            .expect("server hello");
        let (session, _) = pending
            .verify(&finish, bank.ca_cert(), now)
            .expect("finish")
            .accept(&NoRevocationList, SessionParams::default(), now)
            .expect("accept");
        Mutex::new(session)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut s = session().lock().expect("lock");
    let before = s.next_client_seq();
    assert!(s.open(data, SystemTime::now()).is_err());
    assert_eq!(s.next_client_seq(), before);
});
