terraform {
  encryption {
    key_provider "external" "k" {
      command = []
    }
    method "aes_gcm" "m" {
      keys = key_provider.external.k
    }
    state {
      method = method.aes_gcm.m
    }
  }
}
