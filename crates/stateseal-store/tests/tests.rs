//! Integration tests of stateseal-store: the conformance suite on every backend, and interop with real Terraform on moto.
//!
//! One integration-test binary for the crate (each module below is one area), so the test
//! suite links this crate and its dependencies once, not once per file.

mod store;
