//! The server's handshake: any bytes as a ClientHello, and as a ClientFinish for a pending
//! handshake, end in a reply or an error, never a panic; a refused ClientFinish gives the
//! pending handshake back.
#![no_main]

use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use tresor_core::channel::client::{self, ClientAuthentication};
use tresor_core::channel::server::{self, PendingHandshake};
use tresor_core::testkit::TestBank;

struct Fixture {
    bank: TestBank,
    pending: Mutex<Option<PendingHandshake>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let bank = TestBank::new("Fuzz Bank");
        let (_, hello) = client::start(ClientAuthentication::Anonymous);
        let (pending, _) = server::respond(&hello, &bank.server_identity(), SystemTime::now())
            .expect("genuine hello");
        Fixture {
            bank,
            pending: Mutex::new(Some(pending)),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = SystemTime::now();
    let _ = server::respond(data, &f.bank.server_identity(), now);
    let mut slot = f.pending.lock().expect("lock");
    let pending = slot.take().expect("pending handshake");
    match pending.verify(data, f.bank.ca_cert(), now) {
        Ok(_) => panic!("random bytes finished a handshake"),
        Err(refused) => *slot = Some(*refused.pending),
    }
});
