terraform {
  encryption {
    key_provider "pbkdf2" "k" {
      passphrase = "correct-horse-battery-staple"
    }
    method "rot13" "m" {
      keys = key_provider.pbkdf2.k
    }
    state {
      method = method.rot13.m
    }
  }
}
