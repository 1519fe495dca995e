terraform {
  encryption {
    key_provider "aws_kms" "k" {
      kms_key_id = "alias/none"
      key_spec   = "RSA_2048"
      region     = "us-east-1"
    }
    method "aes_gcm" "m" {
      keys = key_provider.aws_kms.k
    }
    state {
      method = method.aes_gcm.m
    }
  }
}
