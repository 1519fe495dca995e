//! Integration tests of stateseal-fleet against moto (and real Terraform): audit, rekey and lock
//! health over a bucket; the hardened-backend bootstrap, SSE migration and verify. One test
//! binary for the crate (each module below is one area).

mod fleet;
mod hardening;
