terraform {
  encryption {
    key_provider "pbkdf2" "k" {
      passphrase = "correct-horse-battery-staple"
    }
    key_provider "pbkdf2" "c" {
      chain = key_provider.pbkdf2.k
    }
    method "aes_gcm" "m" {
      keys = key_provider.pbkdf2.c
    }
    state {
      method = method.aes_gcm.m
    }
  }
}
