//! The command line: every subcommand and its arguments (clap), and the `--help` text; the exit
//! codes at the end of `--help` come from [`exit::TABLE`].

use clap::{Parser, Subcommand};

use crate::failure::exit;
use crate::{cmd, context};

#[derive(Parser)]
#[command(
    name = "stateseal",
    version,
    about = "OpenTofu-compatible state encryption: a state server for backend \"http\", the s3, http and local backends, fleet checks of S3 state buckets, and encrypt, decrypt, rekey and inspect of state and plan files",
    long_about = "OpenTofu-compatible state encryption for Terraform and OpenTofu.\n\n\
What it works on:\n\
- serve: an HTTP state server for backend \"http\": locking, every version kept, encryption at rest, \
auth, TLS, metrics and a web console at /ui (docs/SERVER.md).\n\
- state, workspace, lock, unlock, force-unlock, outputs: the working directory's backend (\"s3\", \"http\" \
or \"local\"), side by side with Terraform and OpenTofu: the same objects, locks and digests.\n\
- audit, verify, locks, rekey s3://, bootstrap: every state of an S3 bucket: encryption, SSE-KMS, digests, \
held locks, bulk rekey, a hardened bucket (commands that change many things are dry runs unless --apply).\n\
- decrypt, encrypt, rekey FILE, inspect, validate: state and plan files in OpenTofu's v0 envelope, byte for byte.\n\n\
The encryption configuration is read as OpenTofu reads it: the terraform { encryption { … } } block of the \
*.tf and *.tf.json files in the working directory (--chdir), or --config FILE, with TF_ENCRYPTION merged over it. \
Variables come from --var, --var-file, TF_VAR_NAME, terraform.tfvars, *.auto.tfvars and declared defaults.\n\n\
The backend block (terraform { backend \"s3\" | \"http\" | \"local\" { … } }) is evaluated early, as OpenTofu 1.8+ \
does: it may use var.*, local.*, path.*, terraform.workspace and functions (not resources, data sources, \
module outputs, or sensitive or ephemeral variables); --backend-config overrides it.",
    after_help = exit::help()
)]
pub struct Cli {
    #[command(flatten)]
    pub global: context::GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Decrypt a state or plan file (or accept a plaintext one, if configured) and write the plaintext.
    Decrypt(cmd::crypt::CryptArgs),
    /// Encrypt a plaintext state or plan file into an OpenTofu v0 envelope.
    Encrypt(cmd::crypt::CryptArgs),
    /// Re-encrypt files, or every state under s3://BUCKET[/PREFIX], with the primary method (reading them with the primary or a fallback).
    Rekey(cmd::rekey::RekeyArgs),
    /// Audit every state under s3://BUCKET[/PREFIX] without a key: plaintext, primary or fallback, SSE, locks, digests, bucket hardening.
    Audit(cmd::audit::AuditArgs),
    /// List and safely break the held locks of every state under s3://BUCKET[/PREFIX].
    Locks(cmd::locks::LocksArgs),
    /// Verify every state under s3://BUCKET[/PREFIX]: SSE-KMS on the expected key, client-side key provider, digest, and that denied principals cannot read (exit 8 on a violation).
    ///
    /// Per state: stored with SSE-KMS on the expected key ARN (--kms-key, else the bucket's
    /// default encryption key), client-side encrypted with the expected key provider
    /// (--key-provider), and matching its -md5 digest item. With --denied-profile, it proves
    /// that the gate bites: GetObject of each state with that AWS shared-config profile's
    /// credentials must fail with AccessDenied; a success, or any other error, is a violation.
    /// Exits 8 on any violation, listing each one on stderr.
    ///
    /// On AWS, a principal with s3:GetObject but no kms:Decrypt on the key is denied by KMS:
    /// that is what the gate is for. moto does not check kms:Decrypt when it serves an SSE-KMS
    /// object, so there a denial can only come from an IAM identity policy: only real AWS
    /// proves that the key itself holds the gate.
    Verify(cmd::verify::VerifyArgs),
    /// Create or fix a hardened state backend (s3: KMS key, bucket, lock table) and print the blocks to paste.
    Bootstrap(cmd::bootstrap::BootstrapArgs),
    /// Describe a file without any key: encrypted or plain, state or plan, metadata, serial, lineage, sizes.
    Inspect(cmd::inspect::InspectArgs),
    /// Check the encryption configuration and list its key providers, methods and targets. Contacts no key service.
    Validate(cmd::validate::ValidateArgs),
    /// The backend's state (s3, http or local), decrypted and encrypted with the directory's configuration.
    State(cmd::state::StateArgs),
    /// List, create and delete the backend's workspaces.
    Workspace(cmd::workspace::WorkspaceArgs),
    /// Take the backend's state lock, print its ID and leave it held (release with `unlock ID`).
    Lock(cmd::lock::LockArgs),
    /// Release a lock taken by `stateseal lock`.
    Unlock(cmd::lock::UnlockArgs),
    /// Release anyone's lock (a crashed run's), given the holder's exact ID; or, with --unreadable, remove a lock record that does not parse.
    ForceUnlock(cmd::lock::ForceUnlockArgs),
    /// Print the root module outputs: like `tofu output` (state target), or with --remote-state NAME like terraform_remote_state.
    ///
    /// The outputs of the backend's state (the current workspace). By default the state is read
    /// like `tofu output` reads it: decrypted with the `state` target of the encryption
    /// configuration (its method and fallback).
    ///
    /// With --remote-state NAME it is read like a `terraform_remote_state` data source named NAME
    /// reads it: with the remote_state_data_sources target, that is its
    /// remote_state_data_source "NAME" block if there is one, else its default block.
    Outputs(cmd::outputs::OutputsArgs),
    /// Disaster recovery: create the offline recovery identity, and drill recovery of every state with it alone.
    Dr(cmd::dr::DrArgs),
    /// An OpenTofu external key provider with recovery keys: each data key wrapped by KMS keys and age recipients.
    Keyprovider(cmd::keyprovider::KeyproviderArgs),
    /// Serve states over HTTP for Terraform's and OpenTofu's backend "http" (locking, versions, encryption at rest).
    Serve(cmd::serve::ServeArgs),
}
