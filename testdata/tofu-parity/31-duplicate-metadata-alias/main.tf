terraform {
  encryption {
    key_provider "pbkdf2" "a" {
      passphrase = "correct-horse-battery-staple"
      encrypted_metadata_alias = "same"
    }
    key_provider "pbkdf2" "b" {
      passphrase = "correct-horse-battery-staple-2"
      encrypted_metadata_alias = "same"
    }
    method "aes_gcm" "a" {
      keys = key_provider.pbkdf2.a
    }
    method "aes_gcm" "b" {
      keys = key_provider.pbkdf2.b
    }
    state {
      method = method.aes_gcm.a
      fallback {
        method = method.aes_gcm.b
      }
    }
  }
}
