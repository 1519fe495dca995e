# An example configuration for `stateseal serve --config examples/server/server.hcl`.
#
# Plaintext states uploaded by Terraform are stored encrypted (OpenTofu v0 envelopes) with the
# state target below; states that OpenTofu encrypts itself are stored byte for byte.
# The passphrase is a placeholder: in real use, pass it through TF_ENCRYPTION (merged over this
# block) or a key_provider that reads a key service, and keep it out of files.

max_body_bytes = 134217728 # 128 MiB

encryption {
  key_provider "pbkdf2" "server" {
    passphrase = "example passphrase: replace it before storing real states"
  }
  method "aes_gcm" "server" {
    keys = key_provider.pbkdf2.server
  }
  state {
    method = method.aes_gcm.server
  }
}
