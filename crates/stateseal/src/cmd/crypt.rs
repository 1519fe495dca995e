//! `stateseal decrypt` and `stateseal encrypt`.

use std::path::PathBuf;

use clap::Args;
use stateseal_encryption::envelope::Header;
use stateseal_encryption::{PayloadKind, Status, Target, TargetEncryption};

use crate::context::Context;
use crate::failure::{exit, Failure};
use crate::io::{read_input, read_input_in_place, write_output};

#[derive(Args, Debug)]
pub struct CryptArgs {
    /// Which target's configuration to use: state, plan or remote:NAME. Default: inferred
    /// (bytes starting with PK, or an envelope without serial/lineage, are a plan; anything else a state).
    #[arg(long, value_name = "TARGET")]
    pub target: Option<Target>,
    /// The input file; `-` or nothing reads stdin.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Write the result to OUT (atomically) instead of stdout.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

/// Decrypts `buf` (the input `name`) with the target's chain, in place: the plaintext ends up
/// at `buf[..len]`. On an error the buffer's contents are unspecified.
pub fn decrypt_in_place(
    te: &TargetEncryption,
    target: &Target,
    name: &str,
    buf: &mut [u8],
) -> Result<(usize, Status), Failure> {
    te.decrypt_in_place(buf, target.payload_kind())
        .map_err(|e| Failure::from(e).context(name))
}

/// Encrypts with the target's primary method and proves the result decrypts back to `plain`.
pub fn encrypt_verified(
    te: &TargetEncryption,
    target: &Target,
    plain: &[u8],
    name: &str,
) -> Result<Vec<u8>, Failure> {
    te.encrypt_verified(plain, target.payload_kind())
        .map_err(|e| Failure::from(e).context(name))
}

pub fn migration_warning(name: &str, te: &TargetEncryption) {
    errln!(
        "warning: {name} was read through a fallback (not the primary method {}); run `stateseal rekey {name}` to re-encrypt it with the primary method",
        te.method_chain().first().map(String::as_str).unwrap_or("?")
    );
}

pub fn decrypt(ctx: &Context, args: &CryptArgs) -> Result<(), Failure> {
    let mut input = read_input_in_place(args.file.as_deref(), ctx.max_input_size())?;
    input.require_content()?;
    let loaded = ctx.loaded()?;
    let name = input.name;
    // Decoded and decrypted in place, in the buffer the file was read into.
    let buf: &mut [u8] = &mut input.bytes;
    let (target, len, status) = match &args.target {
        Some(t) => {
            let (len, status) = decrypt_in_place(loaded.encryption.target(t), t, &name, buf)?;
            (t.clone(), len, status)
        }
        None => loaded
            .encryption
            .decrypt_inferred_in_place(buf)
            .map_err(|e| Failure::from(e).context(&name))?,
    };
    let te = loaded.encryption.target(&target);
    if status == Status::Migration {
        migration_warning(&name, te);
    }
    if !te.is_enabled() {
        errln!("warning: no encryption is configured for the {} target; {} is not encrypted and was copied unchanged", te.name(), name);
    }
    write_output(args.output.as_deref(), &input.bytes[..len])
}

pub fn encrypt(ctx: &Context, args: &CryptArgs) -> Result<(), Failure> {
    let input = read_input(args.file.as_deref(), ctx.max_input_size())?;
    input.require_content()?;
    if Header::parse(&input.bytes).is_ok() {
        return Err(Failure::new(
            exit::INPUT,
            format!("{} is already encrypted", input.name),
            format!(
                "to re-encrypt it with the current primary method run `stateseal rekey {}`",
                input.name
            ),
        ));
    }
    let target = args
        .target
        .clone()
        .unwrap_or_else(|| PayloadKind::sniff(&input.bytes).target());
    let loaded = ctx.loaded()?;
    let te = loaded.encryption.target(&target);
    if !te.is_enabled() {
        return Err(Failure::new(
            exit::CONFIG,
            format!("no encryption is configured for the {} target", te.name()),
            "add a target block, e.g. state { method = method.aes_gcm.NAME }, to the encryption configuration",
        ));
    }
    if te.primary_is_unencrypted() {
        return Err(Failure::new(
            exit::CONFIG,
            format!("the primary method of the {} target is unencrypted, so encrypting would write plaintext", te.name()),
            "make an encrypting method the primary (the unencrypted one can stay as a fallback)",
        ));
    }
    let out = encrypt_verified(te, &target, &input.bytes, &input.name)?;
    write_output(args.output.as_deref(), &out)
}
