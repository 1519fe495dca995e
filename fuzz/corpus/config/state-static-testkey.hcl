# TEST-ONLY provider (not registered in release builds)
key_provider "static" "basic" { key = "6f6f706830656f67686f6834616872756f3751756165686565796f6f72653169" }
method "aes_gcm" "example" { keys = key_provider.static.basic }
state { method = method.aes_gcm.example }