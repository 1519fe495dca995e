terraform {
  encryption {
    key_provider "pbkdf2" "k" {
      passphrase = "correct-horse-battery-staple"
    }
    method "unencrypted" "u" {
      keys = key_provider.pbkdf2.k
    }
    state {
      method = method.unencrypted.u
    }
  }
}
