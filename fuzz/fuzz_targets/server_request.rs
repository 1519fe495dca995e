//! Fuzz target: every parser of `stateseal serve` that reads a client's bytes (path, query and
//! form, lock info, cookie, and the console's reading of a state) must return, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stateseal_server::fuzzing::request(data));
