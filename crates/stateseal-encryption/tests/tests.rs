//! Integration tests of stateseal-encryption: vectors, properties, key providers against real peers or documented-protocol fakes, external programs, the fuzz corpus.
//!
//! One integration-test binary for the crate (each module below is one area), so the test
//! suite links this crate and its dependencies once, not once per file.

#[path = "support/fake_http.rs"]
mod fake_http;

mod aws_kms_moto;
mod azure_vault_fake;
mod decrypt_decision_tree;
mod external_programs;
mod fuzz_corpus;
mod gcp_kms_fake;
mod key_cache;
mod lazy_providers;
mod openbao_fake;
mod pbkdf2_known_answers;
mod provider_errors;
mod roundtrip_props;
mod vectors;
