key_provider "pbkdf2" "main" { passphrase = "correct-horse-battery-staple" }
method "aes_gcm" "main" { keys = key_provider.pbkdf2.main }
plan { method = method.aes_gcm.main }