terraform {
  encryption {
    key_provider "vault9" "k" {
      passphrase = "correct-horse-battery-staple"
    }
    method "aes_gcm" "m" {
      keys = key_provider.vault9.k
    }
    state {
      method = method.aes_gcm.m
    }
  }
}
