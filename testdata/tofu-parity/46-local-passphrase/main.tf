locals {
  passphrase = "correct-horse-battery-staple"
}
terraform {
  encryption {
    key_provider "pbkdf2" "k" {
      passphrase = local.passphrase
    }
    method "aes_gcm" "m" {
      keys = key_provider.pbkdf2.k
    }
    state {
      method = method.aes_gcm.m
    }
  }
}
