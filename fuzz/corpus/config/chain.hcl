key_provider "pbkdf2" "a" { chain = key_provider.pbkdf2.b }
key_provider "pbkdf2" "b" { passphrase = "0123456789abcdef" }
method "aes_gcm" "m" {
 keys = key_provider.pbkdf2.a
 aad = [1,2]
}
method "unencrypted" "u" {}
state {
 method = method.aes_gcm.m
 fallback { method = method.unencrypted.u }
}
remote_state_data_sources {
 default { method = method.aes_gcm.m }
 remote_state_data_source "x.y" { method = method.aes_gcm.m }
}
