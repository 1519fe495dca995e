//! `stateseal keyprovider`: an OpenTofu `external` key provider program that wraps each fresh
//! data key for every `--kms` key and every age `--recipient`, so that a lost or disabled KMS
//! key is not a lost state: the offline age identity (the recovery key) opens it too.
//!
//! Protocol (OpenTofu 1.10+, docs/ENCRYPTION-FORMAT.md §3.6): a header line on stdout; the
//! stored metadata on stdin (`null`, or `{"external_data": …}`); one JSON answer on stdout with
//! the encryption key, the decryption key when metadata was given, and the new
//! `external_data` (the layout of `stateseal_fleet::recovery`). Diagnostics go to stderr, which
//! OpenTofu shows with a failure. No key byte is ever printed anywhere but the answer.

use std::io::Read;

use base64::Engine;
use clap::Args;
use stateseal_core::secret::Secret;
use stateseal_fleet::recovery::{self, kms::Kms, ExternalData, RecoveryError, Wrap};
use zeroize::Zeroizing;

use crate::failure::{exit, Failure};

/// The variable naming the age identity file used to decrypt (recovery).
pub const IDENTITY_VAR: &str = "STATESEAL_RECOVERY_IDENTITY";

/// The most stdin may hold: OpenTofu sends only the stored metadata.
const MAX_INPUT: u64 = 1 << 20;

#[derive(Args)]
#[command(
    long_about = "An OpenTofu external key provider with recovery keys.\n\n\
Each encryption gets a fresh random 32-byte data key, wrapped by every --kms key (AWS KMS Encrypt, \
with the usual credential chain; AWS_ENDPOINT_URL_KMS overrides the endpoint) and by every age \
--recipient (an X25519 public key, age1…). The wraps are stored in the envelope's external_data, \
which OpenTofu keeps and hands back on every later run; only public recipients and key ARNs are stored.\n\n\
To decrypt it uses the first path that works. When STATESEAL_RECOVERY_IDENTITY names an age identity \
file (the recovery key, kept offline), the identity is tried first and no KMS call is made if it \
opens the data key; otherwise each KMS key is tried in turn. It reports the path it used on stderr.\n\n\
While STATESEAL_RECOVERY_IDENTITY is set (recovery mode), a --kms key that cannot wrap the new data \
key (disabled, deleted, unreachable) is skipped with a warning, so that a state can still be read \
and rewritten onto new keys; outside recovery mode every wrap must succeed.\n\n\
Use it in the encryption block:\n\n\
  key_provider \"external\" \"state\" {\n    command = [\"stateseal\", \"keyprovider\", \"--kms\", \"arn:aws:kms:…\", \"--recipient\", \"age1…\"]\n  }\n\n\
See docs/RECOVERY.md for the runbook and `stateseal dr drill` for proving recovery works."
)]
pub struct KeyproviderArgs {
    /// An AWS KMS key (ARN, key ID or alias ARN) that wraps every data key (repeatable).
    #[arg(long = "kms", value_name = "KEY")]
    kms: Vec<String>,
    /// An age X25519 recipient (age1…) that wraps every data key (repeatable).
    #[arg(long = "recipient", value_name = "AGE_RECIPIENT")]
    recipients: Vec<String>,
}

pub fn run(args: &KeyproviderArgs) -> Result<(), Failure> {
    if args.kms.is_empty() && args.recipients.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            "keyprovider needs at least one --kms key or --recipient",
            "add --kms arn:aws:kms:… and --recipient age1… to the command in the key_provider \"external\" block",
        ));
    }
    let recipients = recovery::parse_recipients(&args.recipients).map_err(failure)?;
    out!("{{\"magic\":\"OpenTofu-External-Key-Provider\",\"version\":1}}\n");

    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut input)
        .map_err(|e| Failure::plain(exit::FAILURE, format!("reading stdin: {e}")))?;
    if input.len() as u64 > MAX_INPUT {
        return Err(Failure::plain(
            exit::INPUT,
            format!("the input on stdin is over {MAX_INPUT} bytes: it is not OpenTofu's metadata"),
        ));
    }
    let stored = stored_data(&input)?;
    let identity = std::env::var(IDENTITY_VAR).ok().filter(|v| !v.is_empty());
    let kms = Kms::from_env();

    let decryption_key = match &stored {
        Some(data) => Some(open(data, identity.as_deref(), &kms)?),
        None => None,
    };

    let key = recovery::new_data_key().map_err(failure)?;
    let mut wraps = Vec::new();
    for k in &args.kms {
        match stateseal_aws::block_on_thread(kms.wrap(&key, k)) {
            Ok(w) => wraps.push(w),
            Err(e) if identity.is_some() => {
                errln!("stateseal keyprovider: warning: recovery mode: the new data key is not wrapped for {k}: {e}");
            }
            Err(e) => return Err(failure(e)),
        }
    }
    wraps.extend(recovery::wrap_age(&key, &recipients).map_err(failure)?);
    if wraps.is_empty() {
        return Err(Failure::plain(
            exit::CONFIG,
            "no --kms key could wrap the new data key and there is no --recipient: nothing could ever decrypt it",
        ));
    }
    let meta = serde_json::to_string(&ExternalData::new(wraps))
        .map_err(|e| Failure::plain(exit::FAILURE, format!("encoding external_data: {e}")))?;
    let b64 =
        |s: &Secret| Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(s.expose()));
    let encryption = b64(&key);
    let decryption = decryption_key.as_ref().map(b64);
    let mut answer = Zeroizing::new(format!(
        "{{\"keys\":{{\"encryption_key\":\"{}\"",
        *encryption
    ));
    if let Some(d) = &decryption {
        answer.push_str(&format!(",\"decryption_key\":\"{}\"", **d));
    }
    answer.push_str(&format!("}},\"meta\":{{\"external_data\":{meta}}}}}\n"));
    out!("{}", *answer);
    Ok(())
}

/// The stored layout from OpenTofu's input: `None` when there is none (`null`, or 1.10–1.11's
/// `{"external_data":null}`).
fn stored_data(input: &[u8]) -> Result<Option<ExternalData>, Failure> {
    let bad = |why: String| {
        Failure::new(
            exit::INPUT,
            format!("the metadata OpenTofu sent on stdin is not valid: {why}"),
            "this program must be run by OpenTofu's external key provider, which sends null or {\"external_data\": …}",
        )
    };
    let v: serde_json::Value = serde_json::from_slice(input).map_err(|e| bad(e.to_string()))?;
    let data = match &v {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Object(m) if m.len() == 1 && m.contains_key("external_data") => {
            &m["external_data"]
        }
        _ => {
            return Err(bad(
                "expected null or an object with only external_data".into()
            ))
        }
    };
    if data.is_null() {
        return Ok(None);
    }
    ExternalData::from_value(data).map(Some).map_err(failure)
}

/// The stored data key: with the identity first when one is set, then with each KMS key.
fn open(data: &ExternalData, identity: Option<&str>, kms: &Kms) -> Result<Secret, Failure> {
    let mut errors = Vec::new();
    if let Some(path) = identity {
        let opened = recovery::read_identities(path)
            .and_then(|ids| recovery::open_with_identities(data, &ids));
        match opened {
            Ok((key, recipient)) => {
                errln!("stateseal keyprovider: decrypted with the recovery identity {path} (recipient {recipient})");
                return Ok(key);
            }
            Err(e) => errors.push(e),
        }
    }
    if data.wraps.iter().any(|w| matches!(w, Wrap::AwsKms { .. })) {
        match stateseal_aws::block_on_thread(kms.open(data)) {
            Ok((key, key_id)) => {
                errln!("stateseal keyprovider: decrypted with KMS key {key_id}");
                return Ok(key);
            }
            Err(e) => errors.extend(e),
        }
    } else if identity.is_none() {
        errors.push(RecoveryError::NoPath);
    }
    let code = errors.first().map_or(exit::DECRYPT, code_of);
    let cause = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Err(Failure::new(
        code,
        format!("no recipient could open the data key: {cause}"),
        format!("restore access to a KMS key, or set {IDENTITY_VAR} to the recovery identity file"),
    ))
}

fn code_of(e: &RecoveryError) -> i32 {
    match e {
        RecoveryError::Damaged { .. } => exit::INPUT,
        RecoveryError::IdentityMismatch { .. } | RecoveryError::NoRecoveryRecipient => {
            exit::DECRYPT
        }
        _ => exit::CONFIG,
    }
}

fn failure(e: RecoveryError) -> Failure {
    Failure::plain(code_of(&e), e.to_string())
}
