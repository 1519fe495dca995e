terraform {
  encryption {
    key_provider "aws_kms" "k" {
      kms_key_id = "alias/none"
      key_spec   = "AES_256"
      region     = "us-east-1"
      endpoints {
        kms = "http://127.0.0.1:1"
      }
    }
    method "aes_gcm" "m" {
      keys = key_provider.aws_kms.k
    }
    state {
      method = method.aes_gcm.m
    }
  }
}
