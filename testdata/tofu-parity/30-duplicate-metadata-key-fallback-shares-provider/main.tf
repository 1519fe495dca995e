terraform {
  encryption {
    key_provider "pbkdf2" "k" {
      passphrase = "correct-horse-battery-staple"
    }
    method "aes_gcm" "m" {
      keys = key_provider.pbkdf2.k
    }
    method "aes_gcm" "n" {
      keys = key_provider.pbkdf2.k
    }
    state {
      method = method.aes_gcm.n
      fallback {
        method = method.aes_gcm.m
      }
    }
  }
}
