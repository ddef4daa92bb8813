//! Every decoder of the channel's wire format: no panic, and what decodes re-encodes to the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tresor_core::testkit::check_decoders_are_canonical(data));
