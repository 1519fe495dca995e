resource "terraform_data" "p" {
  input = "correct-horse-battery-staple"
}
terraform {
  encryption {
    key_provider "pbkdf2" "k" {
      passphrase = terraform_data.p.output
    }
    method "aes_gcm" "m" {
      keys = key_provider.pbkdf2.k
    }
    state {
      method = method.aes_gcm.m
    }
  }
}
