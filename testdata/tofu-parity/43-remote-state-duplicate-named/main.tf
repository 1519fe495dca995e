terraform {
  encryption {
    key_provider "pbkdf2" "k" {
      passphrase = "correct-horse-battery-staple"
    }
    method "aes_gcm" "m" {
      keys = key_provider.pbkdf2.k
    }
    remote_state_data_sources {
      remote_state_data_source "net" {
        method = method.aes_gcm.m
      }
      remote_state_data_source "net" {
        method = method.aes_gcm.m
      }
    }
  }
}
