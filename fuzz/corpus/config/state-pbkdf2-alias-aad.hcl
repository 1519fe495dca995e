key_provider "pbkdf2" "renamed_freely" {
  passphrase = "OpenTofu has encryption"
  encrypted_metadata_alias = "certificates"
}
method "aes_gcm" "main" {
  keys = key_provider.pbkdf2.renamed_freely
  aad  = [111, 112, 101, 110, 116, 111, 102, 117] # "opentofu"
}
state { method = method.aes_gcm.main }