terraform {
  encryption {
    key_provider "aws_kms" "k" {
      kms_key_id = "alias/none"
      key_spec   = "AES_256"
      region     = "us-east-1"
      assume_role {
        role_arn = "arn:aws:iam::123456789012:role/x"
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
