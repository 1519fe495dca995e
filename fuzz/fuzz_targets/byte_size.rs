//! Fuzz target: the byte-size parser of the CLI's `--max-input-size` and the capped reader
//! it drives (stateseal-core `size`) must never panic, and sizes must round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stateseal_encryption::fuzzing::byte_size(data));
