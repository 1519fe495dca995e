//! Microsoft Entra ID access tokens for azure_vault, chosen the way OpenTofu's azure auth
//! package chooses (the first method whose settings are complete, in this order):
//!
//! 1. client certificate (`client_certificate(_path)`): recognized, but not supported here;
//! 2. client secret (`tenant_id`, `client_id(_file_path)`, `client_secret(_file_path)`): the
//!    OAuth 2.0 client-credentials grant;
//! 3. OpenID Connect (`use_oidc`, `tenant_id`, `client_id`, and `oidc_token(_file_path)` or
//!    `oidc_request_url` + `oidc_request_token` as in GitHub Actions): a client-assertion grant;
//! 4. managed identity (`use_msi`): the instance metadata service, or `msi_endpoint` /
//!    `MSI_ENDPOINT` (Cloud Shell), or `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (App Service);
//! 5. AKS workload identity (`use_aks_workload_identity`): `AZURE_FEDERATED_TOKEN_FILE` as a
//!    client assertion for `AZURE_CLIENT_ID` in `AZURE_TENANT_ID`;
//! 6. the Azure CLI (`use_cli`, default true): `az account get-access-token`.
//!
//! The token endpoint is `{authority}{tenant}/oauth2/v2.0/token`; the authority comes from
//! `environment` or `metadata_host`. `STATESEAL_AZURE_AUTHORITY_HOST` overrides it (tests).

use std::time::{Duration, Instant};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::http_json::{self, form_encode, percent_encode};
use stateseal_core::secret::Secret;

pub const AUTHORITY_HOST_ENV: &str = "STATESEAL_AZURE_AUTHORITY_HOST";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Tokens are renewed this long before they expire.
const MARGIN: Duration = Duration::from_secs(300);

/// The Azure cloud: a known one, or one described by a metadata host.
pub(super) enum Cloud {
    Known {
        authority: &'static str,
        exchange_audience: &'static str,
    },
    MetadataHost(String),
}

impl Cloud {
    /// OpenTofu's environment names.
    pub fn known(environment: &str) -> Option<Cloud> {
        let (authority, exchange_audience) = match environment {
            "" | "public" | "global" | "canary" => (
                "https://login.microsoftonline.com/",
                "api://AzureADTokenExchange",
            ),
            "usgovernment" | "usgovernmentl4" | "dod" | "usgovernmentl5" => (
                "https://login.microsoftonline.us/",
                "api://AzureADTokenExchangeUSGov",
            ),
            "china" => (
                "https://login.chinacloudapi.cn/",
                "api://AzureADTokenExchangeChina",
            ),
            _ => return None,
        };
        Some(Cloud::Known {
            authority,
            exchange_audience,
        })
    }

    /// `(authority host ending in '/', token-exchange audience)`.
    fn resolve(&self, agent: &ureq::Agent) -> Result<(String, &'static str), String> {
        let (authority, audience) = match self {
            Cloud::Known {
                authority,
                exchange_audience,
            } => (authority.to_string(), *exchange_audience),
            Cloud::MetadataHost(host) => {
                #[derive(Deserialize)]
                struct Endpoints {
                    authentication: Authentication,
                }
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Authentication {
                    login_endpoint: String,
                }
                let url = format!("https://{host}/metadata/endpoints?api-version=2023-11-01");
                let reply = http_json::send(agent, "GET", &url, &[], "", &[]).map_err(|e| {
                    format!("retrieving environments from Azure MetaData service: {e}")
                })?;
                let e: Endpoints = reply
                    .json()
                    .map_err(|e| format!("decoding json in metadata response: {e}"))?;
                (
                    e.authentication.login_endpoint,
                    "api://AzureADTokenExchange",
                )
            }
        };
        let authority = std::env::var(AUTHORITY_HOST_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or(authority);
        Ok((format!("{}/", authority.trim_end_matches('/')), audience))
    }
}

/// The auth settings, environment fallbacks applied.
pub(super) struct Auth {
    pub cloud: Cloud,
    pub use_cli: bool,
    pub client_id: String,
    pub client_id_file_path: String,
    pub client_secret: Option<Secret>,
    pub client_secret_file_path: String,
    pub client_certificate: Option<Secret>,
    /// Kept for completeness: client certificates are not supported.
    #[allow(dead_code)]
    pub client_certificate_password: Option<Secret>,
    pub client_certificate_path: String,
    pub use_oidc: bool,
    pub oidc_token: Option<Secret>,
    pub oidc_token_file_path: String,
    pub oidc_request_url: String,
    pub oidc_request_token: Option<Secret>,
    pub use_msi: bool,
    pub msi_endpoint: String,
    pub use_aks_workload_identity: bool,
    pub subscription_id: String,
    pub tenant_id: String,
}

/// An access token and when to stop using it.
pub(super) struct Token {
    pub secret: Secret,
    pub expires: Instant,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// OpenTofu's `consolidateFileAndValue`: the value or the file's content; both must agree.
fn value_or_file(
    value: Option<&[u8]>,
    file: &str,
    what: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    let from_file = if file.is_empty() {
        None
    } else {
        Some(Zeroizing::new(
            std::fs::read(file).map_err(|e| format!("error reading {what} file: {e}"))?,
        ))
    };
    let value = value.filter(|v| !v.is_empty());
    let from_file = from_file.filter(|f| !f.is_empty());
    match (value, from_file) {
        (None, None) => Ok(None),
        (Some(v), None) => Ok(Some(Zeroizing::new(v.to_vec()))),
        (None, Some(f)) => Ok(Some(f)),
        (Some(v), Some(f)) if v == &f[..] => Ok(Some(f)),
        _ => Err(format!("{what} provided directly and through file do not match; either make them the same value or only provide one")),
    }
}

/// The method chosen from the settings.
enum Method {
    ClientSecret {
        client_id: String,
        secret: Zeroizing<Vec<u8>>,
    },
    Oidc {
        client_id: String,
        token: Option<Zeroizing<Vec<u8>>>,
    },
    Msi,
    Workload,
    Cli,
}

impl Auth {
    fn client_id(&self) -> Result<String, String> {
        let id = value_or_file(
            Some(self.client_id.as_bytes()),
            &self.client_id_file_path,
            "client ID",
        )?
        .ok_or("missing client ID, a client ID is required")?;
        Ok(String::from_utf8_lossy(&id).into_owned())
    }

    /// The first complete method, or why none is.
    fn choose(&self) -> Result<Method, String> {
        let mut why: Vec<String> = Vec::new();
        let tenant = !self.tenant_id.is_empty();
        let certificate = self
            .client_certificate
            .as_ref()
            .is_some_and(|c| !c.is_empty())
            || !self.client_certificate_path.is_empty();
        if certificate && tenant && self.client_id().is_ok() {
            return Err("client certificate authentication (client_certificate, client_certificate_path or ARM_CLIENT_CERTIFICATE*) is not supported by stateseal: use a client secret, OpenID Connect, a managed identity, AKS workload identity or the Azure CLI".into());
        }
        why.push("Client Certificate Auth: no client certificate, tenant ID or client ID".into());
        let secret = value_or_file(
            self.client_secret.as_ref().map(Secret::expose),
            &self.client_secret_file_path,
            "client secret",
        );
        match (tenant, self.client_id(), secret) {
            (true, Ok(client_id), Ok(Some(secret))) => {
                return Ok(Method::ClientSecret { client_id, secret })
            }
            (_, id, secret) => why.push(format!(
                "Client Secret Auth: {}",
                [
                    (!tenant).then(|| "Tenant ID is missing.".to_string()),
                    id.err().map(|e| format!("The Client ID is misconfigured: {e}.")),
                    match secret {
                        Ok(Some(_)) => None,
                        Ok(None) => Some("The Client Secret is misconfigured: missing client secret, a client secret is required.".into()),
                        Err(e) => Some(format!("The Client Secret is misconfigured: {e}.")),
                    },
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
            )),
        }
        if self.use_oidc {
            let token = value_or_file(
                self.oidc_token.as_ref().map(Secret::expose),
                &self.oidc_token_file_path,
                "token",
            );
            let request = !self.oidc_request_url.is_empty()
                && self
                    .oidc_request_token
                    .as_ref()
                    .is_some_and(|t| !t.is_empty());
            match (tenant, self.client_id(), token) {
                (true, Ok(client_id), Ok(token)) if token.is_some() || request => {
                    return Ok(Method::Oidc { client_id, token })
                }
                (_, _, Err(e)) => why.push(format!("OpenID Connect Auth: The token is misconfigured: {e}")),
                _ => why.push("OpenID Connect Auth: needs tenant_id, client_id and a token (oidc_token, oidc_token_file_path, or oidc_request_url with oidc_request_token).".into()),
            }
        } else {
            why.push("OpenID Connect Auth: use_oidc is not set.".into());
        }
        if self.use_msi {
            return Ok(Method::Msi);
        }
        why.push("Managed Service Identity Auth: use_msi is not set.".into());
        if self.use_aks_workload_identity {
            return Ok(Method::Workload);
        }
        why.push("AKS Workload Identity Auth: use_aks_workload_identity is not set.".into());
        if self.use_cli {
            return Ok(Method::Cli);
        }
        why.push("Azure CLI Auth: use_cli is false.".into());
        Err(format!(
            "No valid azure auth methods found: {}",
            why.join(" ")
        ))
    }

    /// A token for `scope`. `challenge_tenant` is the tenant Key Vault asked for; it must be
    /// the configured one, if one is configured.
    pub(crate) fn token(
        &self,
        agent: &ureq::Agent,
        scope: &str,
        challenge_tenant: Option<&str>,
    ) -> Result<Token, String> {
        let tenant = match (self.tenant_id.as_str(), challenge_tenant) {
            ("", Some(t)) => t.to_string(),
            (mine, Some(t)) if !mine.eq_ignore_ascii_case(t) => {
                return Err(format!(
                    "Key Vault asks for a token from tenant {t:?}, but tenant_id is {mine:?}"
                ))
            }
            (mine, _) => mine.to_string(),
        };
        let resource = scope.trim_end_matches("/.default");
        match self.choose()? {
            Method::ClientSecret { client_id, secret } => {
                let (authority, _) = self.cloud.resolve(agent)?;
                let secret = Zeroizing::new(String::from_utf8_lossy(&secret).into_owned());
                token_request(
                    agent,
                    &format!("{authority}{tenant}/oauth2/v2.0/token"),
                    &[
                        ("client_id", &client_id),
                        ("scope", scope),
                        ("grant_type", "client_credentials"),
                        ("client_secret", &secret),
                    ],
                )
            }
            Method::Oidc { client_id, token } => {
                let (authority, audience) = self.cloud.resolve(agent)?;
                let assertion = match token {
                    Some(t) => Zeroizing::new(String::from_utf8_lossy(&t).trim().to_string()),
                    None => self.oidc_request(agent, audience)?,
                };
                assertion_request(agent, &authority, &tenant, &client_id, scope, &assertion)
            }
            Method::Workload => {
                let (authority, _) = self.cloud.resolve(agent)?;
                let (Some(client_id), Some(tenant), Some(file)) = (
                    env("AZURE_CLIENT_ID"),
                    env("AZURE_TENANT_ID"),
                    env("AZURE_FEDERATED_TOKEN_FILE"),
                ) else {
                    return Err("AKS workload identity needs AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE (set by the workload identity webhook)".into());
                };
                let assertion = Zeroizing::new(
                    std::fs::read_to_string(&file)
                        .map_err(|e| format!("cannot read AZURE_FEDERATED_TOKEN_FILE {file}: {e}"))?
                        .trim()
                        .to_string(),
                );
                assertion_request(agent, &authority, &tenant, &client_id, scope, &assertion)
            }
            Method::Msi => self.managed_identity(agent, resource),
            Method::Cli => self.cli(resource, &tenant),
        }
    }

    /// GitHub Actions style: GET the request URL with the request token as bearer.
    fn oidc_request(
        &self,
        agent: &ureq::Agent,
        audience: &str,
    ) -> Result<Zeroizing<String>, String> {
        let mut url = self.oidc_request_url.clone();
        if !url.contains("audience=") {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("audience=");
            percent_encode(&mut url, audience);
        }
        let bearer = Zeroizing::new(format!(
            "Bearer {}",
            self.oidc_request_token
                .as_ref()
                .map(|t| String::from_utf8_lossy(t.expose()).into_owned())
                .unwrap_or_default()
        ));
        let reply = http_json::send(
            agent,
            "GET",
            &url,
            &[
                ("Authorization", &bearer),
                ("Accept", "application/json; api-version=2.0"),
            ],
            "",
            &[],
        )
        .map_err(|e| format!("error obtaining token: {e}"))?;
        if !reply.is_success() {
            return Err(format!(
                "non-2xx response: status code {}, body: {}",
                reply.status,
                reply.text_excerpt()
            ));
        }
        #[derive(Deserialize)]
        struct Value {
            value: Option<Secret>,
        }
        let v: Value = reply.json()?;
        let token = v.value.ok_or("the OIDC token response has no value")?;
        Ok(Zeroizing::new(
            String::from_utf8_lossy(token.expose()).into_owned(),
        ))
    }

    fn managed_identity(&self, agent: &ureq::Agent, resource: &str) -> Result<Token, String> {
        let mut query = String::from("resource=");
        percent_encode(&mut query, resource);
        if !self.client_id.is_empty() {
            query.push_str("&client_id=");
            percent_encode(&mut query, &self.client_id);
        }
        let cloud_shell = env("MSI_ENDPOINT")
            .or_else(|| Some(self.msi_endpoint.clone()).filter(|e| !e.is_empty()));
        let reply = if let Some(endpoint) = cloud_shell {
            http_json::send(
                agent,
                "POST",
                &endpoint,
                &[("Metadata", "true")],
                "application/x-www-form-urlencoded",
                query.as_bytes(),
            )
        } else if let (Some(endpoint), Some(header)) =
            (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER"))
        {
            let url = format!("{endpoint}?api-version=2019-08-01&{query}");
            http_json::send(
                agent,
                "GET",
                &url,
                &[("X-IDENTITY-HEADER", &header)],
                "",
                &[],
            )
        } else {
            let host = env("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                .unwrap_or_else(|| "http://169.254.169.254".into());
            let url = format!(
                "{}/metadata/identity/oauth2/token?api-version=2018-02-01&{query}",
                host.trim_end_matches('/')
            );
            http_json::send(agent, "GET", &url, &[("Metadata", "true")], "", &[])
        }
        .map_err(|e| format!("managed identity: {e}"))?;
        token_reply(reply, "the managed identity endpoint")
    }

    fn cli(&self, resource: &str, tenant: &str) -> Result<Token, String> {
        let mut cmd = std::process::Command::new("az");
        cmd.args([
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            resource,
        ]);
        if !tenant.is_empty() {
            cmd.args(["--tenant", tenant]);
        }
        if !self.subscription_id.is_empty() {
            cmd.args(["--subscription", &self.subscription_id]);
        }
        let out = cmd.stdin(std::process::Stdio::null()).output().map_err(|e| {
            format!("Azure CLI Auth: cannot run az ({e}); install the Azure CLI and run `az login`, or configure another auth method (client_secret, use_oidc, use_msi, use_aks_workload_identity)")
        })?;
        let stdout = Zeroizing::new(out.stdout);
        if !out.status.success() {
            return Err(format!(
                "Azure CLI Auth: az account get-access-token failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct CliToken {
            access_token: Option<Secret>,
        }
        let t: CliToken = serde_json::from_slice(&stdout)
            .map_err(|e| format!("Azure CLI Auth: unexpected output of az: {e}"))?;
        Ok(Token {
            secret: t
                .access_token
                .ok_or("Azure CLI Auth: az returned no accessToken")?,
            // az caches and renews tokens itself; ask it again after a few minutes.
            expires: Instant::now() + MARGIN,
        })
    }
}

fn assertion_request(
    agent: &ureq::Agent,
    authority: &str,
    tenant: &str,
    client_id: &str,
    scope: &str,
    assertion: &str,
) -> Result<Token, String> {
    token_request(
        agent,
        &format!("{authority}{tenant}/oauth2/v2.0/token"),
        &[
            ("client_id", client_id),
            ("scope", scope),
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
}

fn token_request(agent: &ureq::Agent, url: &str, form: &[(&str, &str)]) -> Result<Token, String> {
    super::check_transport(url)?;
    let body = form_encode(form);
    let reply = http_json::send(
        agent,
        "POST",
        url,
        &[],
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    )?;
    token_reply(reply, url)
}

/// `{"access_token", "expires_in"}` (a number, or a string from managed identity endpoints),
/// or Entra's `{"error", "error_description"}`.
fn token_reply(reply: http_json::Reply, from: &str) -> Result<Token, String> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: Option<Secret>,
        expires_in: Option<serde_json::Value>,
        error: Option<String>,
        error_description: Option<String>,
    }
    let a: Answer = reply.json()?;
    if !reply.is_success() || a.access_token.is_none() {
        return Err(format!(
            "cannot get an access token from {from}: HTTP {}: {} {}",
            reply.status,
            a.error.unwrap_or_default(),
            a.error_description.unwrap_or_default()
        ));
    }
    let seconds = match a.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(300)
    .min(86_400); // no Instant overflow, whatever the server says
    Ok(Token {
        secret: a.access_token.expect("checked"),
        expires: Instant::now() + Duration::from_secs(seconds).saturating_sub(MARGIN),
    })
}
