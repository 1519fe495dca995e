//! Documentation only: how this crate relates to OpenTofu, and what it protects against.

/// # Compatibility with OpenTofu
///
/// The envelope (`v0`) is written byte for byte as OpenTofu writes it: compact JSON with the keys
/// `serial`, `lineage` (states only), `meta`, `encrypted_data`, `encryption_version`; Go's
/// HTML-safe string escaping; sorted `meta` keys; standard padded base64. Reading follows Go's
/// `encoding/json`: keys match case-insensitively after an exact match, the last duplicate wins,
/// unknown keys are ignored, a type error makes the input "not an envelope".
///
/// The decrypt decision tree is OpenTofu 1.10+'s: primary, then fallbacks, then plaintext
/// detection (`terraform_version` for states, `PK` for plans) when an `unencrypted` method is in
/// the chain; a read through a fallback or as plaintext returns [`crate::Status::Migration`].
/// Like 1.10+, only the providers the primary method reaches are evaluated, and an envelope holds
/// only their metadata.
///
/// Known, deliberate differences:
/// * Keys are cached per process, by provider and stored metadata (the key cache): a salt or KMS
///   data key read twice is derived or fetched once, and the check after an encrypt reuses the
///   key the provider just returned. So `encrypt` (and `rekey`, `state push`) no longer call
///   `kms:Decrypt` to check their output: a principal that may generate data keys but not decrypt
///   them writes a file it cannot read back, and the denial shows at the next read. OpenTofu
///   does not check its output at all.
/// * A stored pbkdf2 work factor above 20,000,000 iterations (or a key length above 1024) is
///   refused; OpenTofu has no limit, so whoever can write an envelope can make every reader spin.
/// * Target `method` accepts a quoted string (`"method.aes_gcm.x"`), as OpenTofu 1.7–1.9 did;
///   1.10+ requires a bare traversal in native HCL (and a string in JSON).
/// * A fallback that shares a key provider with the primary still decrypts. OpenTofu 1.10+
///   shares one output metadata map across attempts and fails such a read with "Duplicate
///   metadata key" (a rotation that only changes `aad` hits it).
/// * A pbkdf2 `chain` whose upstream has no decryption key yields no decryption key (so the
///   error says "no decryption key available"); OpenTofu derives a wrong key from an empty input.
/// * A non-integer pbkdf2 `iterations`/`key_length`/`salt_length` is an error; OpenTofu 1.12+
///   silently keeps the default.
/// * Large values inside a decrypted state (over 64 KiB) are checked only structurally by the
///   serial/lineage passthrough check; OpenTofu parses the whole state there. The data is
///   authenticated by AES-GCM, so this only matters for a writer that encrypted invalid JSON.
/// * The `static` and `xor` test providers are not registered (as in OpenTofu's releases); the
///   registry lets tests add them (`tests/vectors.rs` registers `static`).
///
/// Key providers (aws_kms, gcp_kms, openbao, external) keep OpenTofu's configuration, metadata
/// and messages, with these differences:
/// * A provider calls only what the purpose needs: encrypting asks for a new data key
///   (`GenerateDataKey`, `Encrypt`, `datakey/plaintext`), decrypting only unwraps the stored one
///   (`Decrypt`, `decrypt`). OpenTofu makes a new data key on every setup, reads included, so a
///   principal without `kms:GenerateDataKey` cannot even read there; here it can.
/// * Building a provider does no I/O. OpenTofu's aws_kms asks STS `GetCallerIdentity` while
///   building unless `skip_credentials_validation` is set; here credentials are first used by
///   the KMS call itself (`allowed_account_ids`/`forbidden_account_ids` add one
///   `GetCallerIdentity` at that point).
/// * aws_kms `skip_metadata_api_check = true` leaves instance metadata out of the credential
///   chain. OpenTofu's aws_kms maps `true` to "enabled" (inverted; its S3 backend is right).
/// * aws_kms also accepts `endpoints { kms = … }`; OpenTofu's block has only `iam` and `sts`
///   (use `AWS_ENDPOINT_URL_KMS`, which both honour, for a configuration that works in both).
///   `insecure = true` is refused rather than silently skipping TLS verification.
/// * gcp_kms supports `service_account` and `authorized_user` credentials, access tokens, the
///   GCE metadata server and impersonation, not `external_account` (workload identity
///   federation) files.
/// * openbao reads `BAO_ADDR`, `BAO_TOKEN`, `BAO_CACERT` and `BAO_NAMESPACE`, not the other
///   `BAO_*` client settings (client certificates, `BAO_SKIP_VERIFY`, …).
/// * azure_vault picks its auth method on first use (OpenTofu does it while building, running
///   `az account show` and fetching OIDC tokens). Client-certificate auth (PKCS#12) is not
///   supported and says so; Azure DevOps service connections are not offered (OpenTofu's
///   azure_vault never sets one either). Plain `http://` is refused except to this machine.
///   Like OpenTofu it uses Key Vault's `encrypt`/`decrypt` operations, not `wrapKey`/`unwrapKey`.
/// * external programs: a program that writes no header line fails (OpenTofu then decodes the
///   whole output as the body). A program still running at the timeout is killed and the
///   error returned at once, even if a child of it keeps its output open (OpenTofu waits for
///   the pipes to close). `STATESEAL_EXTERNAL_TIMEOUT` (seconds) replaces the one-minute
///   timeout. The external method refuses to decrypt without a decryption key whenever `keys`
///   is configured (OpenTofu: when an encryption key is present, which on its path it always is).
///
/// Merging `TF_ENCRYPTION` reproduces OpenTofu's quirks: an env `state {}` block always replaces
/// the code's `method` (so an env block with only `enforced = true` leaves the target without a
/// method), and an env `encrypted_metadata_alias` is dropped for a provider the code defines.
pub mod compatibility {}

/// # Threat model
///
/// Protected: the confidentiality and integrity of the state or plan *content* against anyone
/// who can read or modify the stored file or object but has no key (AES-GCM, 96-bit random
/// nonces, a fresh pbkdf2 salt or KMS data key per process and target, as OpenTofu does).
///
/// Not protected (inherent to the `v0` format):
/// * `serial`, `lineage` and `meta` are plaintext and unauthenticated. Editing them only makes
///   decryption fail (serial/lineage mismatch, wrong key), but they leak the state's identity.
/// * Nothing binds a ciphertext to its target or location: a plan envelope put where a state
///   belongs decrypts (same keys) and only then fails to parse. Old files can be replayed.
/// * A wrong key and modified data are indistinguishable (both fail GCM authentication).
/// * Whoever controls an envelope controls the pbkdf2 parameters its reader uses (bounded here).
///
/// Secrets (passphrases, keys) live in [`stateseal_core::secret::Secret`] (zeroized on drop, redacted in `Debug`)
/// and evaluated configuration bodies are wiped after use. Values inside the HCL evaluator's
/// context are ordinary strings and numbers and are not wiped.
pub mod threat_model {}
