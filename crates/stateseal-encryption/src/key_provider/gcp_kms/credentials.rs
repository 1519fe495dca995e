//! Google OAuth access tokens for gcp_kms, resolved the way OpenTofu's Google client does:
//!
//! 1. `access_token` (or `GOOGLE_OAUTH_ACCESS_TOKEN`): used as it is;
//! 2. `credentials` (or `GOOGLE_CREDENTIALS`), a file path or the JSON itself: a service account
//!    key (a signed JWT exchanged at its `token_uri`) or an `authorized_user` (a refresh token);
//! 3. otherwise Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
//!    `application_default_credentials.json`, then the GCE metadata server;
//!
//! then, with `impersonate_service_account`, IAM Credentials `generateAccessToken` for that
//! account (through `impersonate_service_account_delegates`).
//!
//! `STATESEAL_GCP_IAMCREDENTIALS_ENDPOINT` overrides `https://iamcredentials.googleapis.com`.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::http_json::{self, form_encode, percent_encode};
use stateseal_core::secret::Secret;

pub const IAMCREDENTIALS_ENDPOINT_ENV: &str = "STATESEAL_GCP_IAMCREDENTIALS_ENDPOINT";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const CLOUDKMS: &str = "https://www.googleapis.com/auth/cloudkms";

/// Where the token comes from.
pub(super) enum Source {
    AccessToken(Secret),
    /// The content of a credentials JSON file.
    Json(Secret),
    ApplicationDefault,
}

pub(super) struct Credentials {
    pub source: Source,
    pub impersonate: Option<String>,
    pub delegates: Vec<String>,
}

#[derive(Deserialize)]
struct CredentialsFile {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    private_key: Option<Secret>,
    #[serde(default)]
    private_key_id: String,
    #[serde(default)]
    token_uri: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: Option<Secret>,
    #[serde(default)]
    refresh_token: Option<Secret>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A path (`~` expanded) whose file exists is read; anything else is the content itself.
pub(super) fn read_path_or_contents(v: &str) -> Result<String, String> {
    let path = match (v.strip_prefix('~'), env("HOME")) {
        (Some(rest), Some(home)) => format!("{home}{rest}"),
        _ => v.to_string(),
    };
    if std::path::Path::new(&path).is_file() {
        std::fs::read_to_string(&path).map_err(|e| format!("Error loading credentials: {e}"))
    } else {
        Ok(v.to_string())
    }
}

impl Credentials {
    /// The token to send as `Authorization: Bearer`.
    pub(crate) fn token(&self, agent: &ureq::Agent) -> Result<Secret, String> {
        let scope = if self.impersonate.is_some() {
            CLOUD_PLATFORM
        } else {
            CLOUDKMS
        };
        let base = match &self.source {
            Source::AccessToken(t) => t.clone(),
            Source::Json(content) => from_json(agent, content.expose(), scope)?,
            Source::ApplicationDefault => application_default(agent, scope)?,
        };
        match &self.impersonate {
            None => Ok(base),
            Some(target) => impersonate(agent, &base, target, &self.delegates),
        }
    }
}

fn from_json(agent: &ureq::Agent, content: &[u8], scope: &str) -> Result<Secret, String> {
    let f: CredentialsFile = serde_json::from_slice(content)
        .map_err(|e| format!("the credentials JSON is not valid: {e}"))?;
    let token_uri = if f.token_uri.is_empty() {
        DEFAULT_TOKEN_URI
    } else {
        &f.token_uri
    };
    match f.kind.as_str() {
        "service_account" => {
            let key = f
                .private_key
                .as_ref()
                .ok_or("the service account credentials have no private_key")?;
            let jwt = signed_jwt(&f.client_email, &f.private_key_id, key, scope, token_uri)?;
            token_request(
                agent,
                token_uri,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &jwt),
                ],
                &format!("service account {}", f.client_email),
            )
        }
        "authorized_user" => {
            let secret = f.client_secret.as_ref().map(|s| String::from_utf8_lossy(s.expose()).into_owned());
            let secret = Zeroizing::new(secret.unwrap_or_default());
            let refresh = f
                .refresh_token
                .as_ref()
                .map(|s| String::from_utf8_lossy(s.expose()).into_owned());
            let refresh = Zeroizing::new(refresh.ok_or("the authorized_user credentials have no refresh_token")?);
            token_request(
                agent,
                token_uri,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &f.client_id),
                    ("client_secret", &secret),
                    ("refresh_token", &refresh),
                ],
                "authorized user credentials",
            )
        }
        other => Err(format!(
            "credentials of type {other:?} are not supported (use a service_account or authorized_user key, access_token, or impersonate_service_account)"
        )),
    }
}

/// `header.claims.signature`, RS256, base64url without padding.
fn signed_jwt(
    email: &str,
    key_id: &str,
    pem: &Secret,
    scope: &str,
    audience: &str,
) -> Result<String, String> {
    let der = pem_body(pem.expose()).ok_or("the service account private_key is not a PEM key")?;
    let key = ring::rsa::KeyPair::from_pkcs8(&der)
        .map_err(|e| format!("the service account private_key is not a PKCS#8 RSA key: {e}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key_id});
    let claims =
        json!({"iss": email, "scope": scope, "aud": audience, "iat": now, "exp": now + 3600});
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "signing the service account JWT failed".to_string())?;
    Ok(format!("{signing_input}.{}", b64.encode(sig)))
}

/// The DER bytes of the first PEM block.
fn pem_body(pem: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")?;
    let body_start = start + text[start..].find('\n')? + 1;
    let end = body_start + text[body_start..].find("-----END ")?;
    let b64: Zeroizing<String> = Zeroizing::new(
        text[body_start..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .ok()
        .map(Zeroizing::new)
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<Secret>,
}

fn token_request(
    agent: &ureq::Agent,
    uri: &str,
    form: &[(&str, &str)],
    who: &str,
) -> Result<Secret, String> {
    let body = form_encode(form);
    let reply = http_json::send(
        agent,
        "POST",
        uri,
        &[],
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    )
    .map_err(|e| format!("cannot get an access token for {who}: {e}"))?;
    if !reply.is_success() {
        return Err(format!(
            "cannot get an access token for {who} from {uri}: HTTP {}: {}",
            reply.status,
            reply.text_excerpt()
        ));
    }
    reply
        .json::<TokenResponse>()?
        .access_token
        .ok_or_else(|| format!("the token endpoint {uri} returned no access_token"))
}

fn application_default(agent: &ureq::Agent, scope: &str) -> Result<Secret, String> {
    let well_known = env("CLOUDSDK_CONFIG")
        .or_else(|| env("HOME").map(|h| format!("{h}/.config/gcloud")))
        .map(|d| format!("{d}/application_default_credentials.json"));
    let file = env("GOOGLE_APPLICATION_CREDENTIALS")
        .or_else(|| well_known.filter(|p| std::path::Path::new(p).is_file()));
    if let Some(path) = file {
        let content = Secret::new(
            std::fs::read(&path).map_err(|e| format!("cannot read credentials {path}: {e}"))?,
        );
        return from_json(agent, content.expose(), scope);
    }
    let host = env("GCE_METADATA_HOST").unwrap_or_else(|| "metadata.google.internal".into());
    let mut url =
        format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token?scopes=");
    percent_encode(&mut url, scope);
    let reply = http_json::send(agent, "GET", &url, &[("Metadata-Flavor", "Google")], "", &[])
        .map_err(|e| {
            format!("no Google credentials: set credentials or access_token, GOOGLE_APPLICATION_CREDENTIALS, or run on GCE ({e})")
        })?;
    if !reply.is_success() {
        return Err(format!(
            "the GCE metadata server refused a token: HTTP {}: {}",
            reply.status,
            reply.text_excerpt()
        ));
    }
    reply
        .json::<TokenResponse>()?
        .access_token
        .ok_or_else(|| "the GCE metadata server returned no access_token".into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAccessTokenResponse {
    access_token: Option<Secret>,
}

fn impersonate(
    agent: &ureq::Agent,
    base: &Secret,
    target: &str,
    delegates: &[String],
) -> Result<Secret, String> {
    let endpoint = env(IAMCREDENTIALS_ENDPOINT_ENV)
        .unwrap_or_else(|| "https://iamcredentials.googleapis.com".into());
    let url = format!(
        "{}/v1/projects/-/serviceAccounts/{target}:generateAccessToken",
        endpoint.trim_end_matches('/')
    );
    let delegates: Vec<String> = delegates
        .iter()
        .map(|d| format!("projects/-/serviceAccounts/{d}"))
        .collect();
    let auth = Zeroizing::new(format!("Bearer {}", String::from_utf8_lossy(base.expose())));
    let reply = http_json::send_json(
        agent,
        "POST",
        &url,
        &[("Authorization", &auth)],
        &json!({"delegates": delegates, "scope": [CLOUDKMS], "lifetime": "3600s"}),
    )
    .map_err(|e| format!("cannot impersonate service account {target}: {e}"))?;
    if !reply.is_success() {
        return Err(format!(
            "cannot impersonate service account {target}: {}",
            super::google_error(&reply)
        ));
    }
    reply
        .json::<GenerateAccessTokenResponse>()?
        .access_token
        .ok_or_else(|| format!("generateAccessToken for {target} returned no accessToken"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bodies() {
        let der = pem_body(b"-----BEGIN PRIVATE KEY-----\nAQID\nBA==\n-----END PRIVATE KEY-----\n")
            .unwrap();
        assert_eq!(&**der, &[1, 2, 3, 4]);
        assert!(pem_body(b"no pem").is_none());
    }
}
