//! Every decoder of the channel's wire format: no panic, and what decodes re-encodes to the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tresor_core::channel::wire::{
    self, Accept, AcceptBody, Alert, ClientAuth, ClientFinish, ClientHello, Record, ServerAuth,
    ServerHello,
};

macro_rules! canonical {
    ($data:expr, $($t:ty),*) => {
        $(if let Ok(m) = <$t>::decode($data) {
            assert_eq!(m.encode(), $data);
        })*
    };
}

fuzz_target!(|data: &[u8]| {
    let _ = wire::peek_type(data);
    canonical!(
        data,
        ClientHello,
        ServerHello,
        ServerAuth,
        ClientFinish,
        ClientAuth,
        Accept,
        AcceptBody,
        Record,
        Alert
    );
});
