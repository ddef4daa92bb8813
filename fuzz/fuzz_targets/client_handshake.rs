//! The client's handshake: any bytes as a ServerHello end in an error, never a panic.
#![no_main]

use std::sync::OnceLock;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use tresor_core::channel::client::{self, ClientAuthentication};
use tresor_core::testkit::TestBank;

fuzz_target!(|data: &[u8]| {
    static BANK: OnceLock<TestBank> = OnceLock::new();
    let bank = BANK.get_or_init(|| TestBank::new("Fuzz Bank"));
    let (await_hello, _) = client::start(ClientAuthentication::Anonymous);
    assert!(
        await_hello
            .receive(data, bank.ca_cert(), SystemTime::now())
            .is_err()
    );
});
