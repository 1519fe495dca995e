terraform {
  encryption {
    key_provider "pbkdf2" "k" {
      passphrase = "correct-horse-battery-staple"
    }
    method "aes_gcm" "m" {
      keys = key_provider.pbkdf2.k
    }
    method "unencrypted" "u" {}
    state {
      method = method.unencrypted.u
      fallback {
        method = method.aes_gcm.m
      }
    }
  }
}
