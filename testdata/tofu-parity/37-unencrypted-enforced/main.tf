terraform {
  encryption {
    method "unencrypted" "u" {}
    state {
      method = method.unencrypted.u
      enforced = true
    }
  }
}
