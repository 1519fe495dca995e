# A root module whose state is encrypted by OpenTofu's client-side encryption.
# The passphrase default is for this demo only: real configurations take it from
# -var / TF_VAR_passphrase / a .tfvars file, or use a KMS key provider.
variable "passphrase" {
  type      = string
  sensitive = true
  default   = "correct-horse-battery-staple"
}

terraform {
  encryption {
    key_provider "pbkdf2" "main" {
      passphrase = var.passphrase
    }
    method "aes_gcm" "main" {
      keys = key_provider.pbkdf2.main
    }
    state {
      method   = method.aes_gcm.main
      enforced = true
    }
    plan {
      method   = method.aes_gcm.main
      enforced = true
    }
  }
}
