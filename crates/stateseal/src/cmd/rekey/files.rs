//! `stateseal rekey FILE...`: decrypt with the primary or a fallback, re-encrypt with the
//! primary, verify, and replace each file atomically. A symbolic link is followed: its target
//! is rewritten and the link kept; the owner, group and mode of the file are kept.

use stateseal_encryption::envelope::Header;
use stateseal_encryption::{Status, Target};

use super::RekeyArgs;
use crate::cmd::crypt::{decrypt_in_place, encrypt_verified};
use crate::context::Context;
use crate::failure::{exit, Failure};
use crate::io::{read_input_in_place, replace_file, write_target};

/// Rekeys each file in place; the ones that fail are left unchanged and listed.
pub(super) fn run(ctx: &Context, args: &RekeyArgs) -> Result<(), Failure> {
    let loaded = ctx.loaded()?;
    if let [only] = args.files.as_slice() {
        let max = ctx.max_input_size();
        let report = rekey_one(loaded, args.target.as_ref(), only, max).map_err(|f| Failure {
            cause: format!("{} (the file is unchanged)", f.cause),
            ..f
        })?;
        outln!("{report}");
        return Ok(());
    }
    let mut failed: Vec<Failure> = Vec::new();
    for path in &args.files {
        match rekey_one(loaded, args.target.as_ref(), path, ctx.max_input_size()) {
            Ok(report) => outln!("{report}"),
            Err(f) => {
                errln!("{}", f.render());
                failed.push(f);
            }
        }
    }
    match failed.as_slice() {
        [] => Ok(()),
        _ => Err(Failure::plain(
            shared_code(&failed),
            format!(
                "{} of {} file(s) were not rekeyed; they are unchanged",
                failed.len(),
                args.files.len()
            ),
        )),
    }
}

/// The exit code of a run in which several files failed: the code they all share, else
/// [`exit::FAILURE`] (exit codes name a kind of failure, not a severity; each file's own error,
/// with its code's cause and fix, was printed as it failed).
fn shared_code(failed: &[Failure]) -> i32 {
    match failed.split_first() {
        Some((first, rest)) if rest.iter().all(|f| f.code == first.code) => first.code,
        _ => exit::FAILURE,
    }
}

fn encryption_of(bytes: &[u8]) -> String {
    match Header::parse(bytes) {
        Ok(h) if h.meta.is_empty() => "encrypted (no key-provider metadata)".to_string(),
        Ok(h) => format!(
            "encrypted with metadata {}",
            h.meta.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        Err(_) => "plaintext".to_string(),
    }
}

fn rekey_one(
    loaded: &stateseal_encryption::load::Loaded,
    target: Option<&Target>,
    path: &std::path::Path,
    max: u64,
) -> Result<String, Failure> {
    // Read and rewrite the file itself: through a symbolic link, its target.
    let real = write_target(path)?;
    // Read into memory that is decoded and decrypted in place (no copy of the file's bytes).
    let mut input = read_input_in_place(Some(&real), max)?;
    input.name = path.display().to_string();
    input.require_content()?;
    let target = target
        .cloned()
        .unwrap_or_else(|| stateseal_encryption::PayloadKind::sniff(&input.bytes).target());
    let te = loaded.encryption.target(&target);
    if !te.is_enabled() {
        return Err(Failure::new(
            exit::CONFIG,
            format!(
                "{}: no encryption is configured for the {} target",
                input.name,
                te.name()
            ),
            "add the target block with the new method as primary and the old one as fallback",
        ));
    }
    // What the file was, told before decrypting overwrites its bytes.
    let (size, was, was_envelope) = (
        input.bytes.len(),
        encryption_of(&input.bytes),
        Header::parse(&input.bytes).is_ok(),
    );
    let (len, status) = decrypt_in_place(te, &target, &input.name, &mut input.bytes)?;
    let plain = &input.bytes[..len];
    // Never written unless it decrypts back to `plain` (encrypt_verified round-trips it).
    let out = if te.primary_is_unencrypted() {
        std::borrow::Cow::Borrowed(plain)
    } else {
        std::borrow::Cow::Owned(encrypt_verified(te, &target, plain, &input.name)?)
    };
    replace_file(&real, &out)?;
    let chain = te.method_chain();
    let read_with = match (status, was_envelope) {
        (Status::Satisfied, _) => format!("the primary method {}", chain[0]),
        (Status::Migration, true) => "a fallback method".to_string(),
        (Status::Migration, false) => "the unencrypted fallback".to_string(),
    };
    let link = if real.as_path() == path {
        String::new()
    } else {
        format!(
            " (a symbolic link: its target {} was rewritten, the link kept)",
            real.display()
        )
    };
    Ok(format!(
        "{}{link}: rekeyed {} ({} bytes → {} bytes): was {}, read with {}; now {} by {}",
        input.name,
        te.name(),
        size,
        out.len(),
        was,
        read_with,
        encryption_of(&out),
        chain[0]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_failures_exit_with_their_shared_code_else_failure() {
        let f = |code| Failure::plain(code, "x");
        assert_eq!(
            shared_code(&[f(exit::DECRYPT), f(exit::DECRYPT)]),
            exit::DECRYPT
        );
        // Not the largest code: a kind, not a severity.
        assert_eq!(
            shared_code(&[f(exit::DECRYPT), f(exit::CHECK)]),
            exit::FAILURE
        );
        assert_eq!(shared_code(&[f(exit::UNAVAILABLE)]), exit::UNAVAILABLE);
    }
}
