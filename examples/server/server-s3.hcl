# An example configuration for `stateseal serve --config examples/server/server-s3.hcl`: states in
# an S3 bucket instead of the data directory, laid out as Terraform's and OpenTofu's
# `backend "s3" { key = "<path>" }` lays them out, so they share states and locks with the server.
#
# The bucket must have versioning Enabled (every version is kept as an object version). Any
# number of server instances may use the same bucket. Credentials come from the AWS environment
# (AWS_PROFILE, AWS_ACCESS_KEY_ID…, an instance role) as for OpenTofu, or from the block.

storage "s3" {
  bucket         = "team-terraform-states"
  region         = "eu-west-1"
  dynamodb_table = "terraform-locks" # the LockID table Terraform and OpenTofu already use
  use_lockfile   = true              # and/or <path>.tflock objects (OpenTofu 1.10+, Terraform 1.10+)
  encrypt        = true              # SSE on top of the server's own encryption below
}

encryption {
  key_provider "pbkdf2" "server" {
    passphrase = "example passphrase: replace it before storing real states"
  }
  method "aes_gcm" "server" {
    keys = key_provider.pbkdf2.server
  }
  state {
    method = method.aes_gcm.server
  }
}
