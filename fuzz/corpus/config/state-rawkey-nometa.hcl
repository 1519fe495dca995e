method "aes_gcm" "literal" {
  keys = {
    encryption_key = [1,2,...,32]
    decryption_key = [1,2,...,32]
  }
}
state { method = method.aes_gcm.literal }