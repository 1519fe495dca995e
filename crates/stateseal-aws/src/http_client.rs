//! The HTTPS client: rustls with ring, an optional CA bundle, and proxies.

use aws_sdk_sts::config::SharedHttpClient;
use aws_smithy_http_client::tls;

use crate::env::{env, expand_home, non_empty};
use crate::settings::AwsSettings;

pub(super) fn http_client(s: &AwsSettings) -> Result<SharedHttpClient, String> {
    use aws_smithy_http_client::proxy::ProxyConfig;
    let ca = non_empty(&s.custom_ca_bundle)
        .map(str::to_string)
        .or_else(|| env("AWS_CA_BUNDLE"));
    let mut tls_context = tls::TlsContext::builder();
    if let Some(path) = ca {
        let pem = std::fs::read(expand_home(&path))
            .map_err(|e| format!("cannot read custom_ca_bundle {path}: {e}"))?;
        tls_context = tls_context.with_trust_store(
            tls::TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(pem),
        );
    }
    let tls_context = tls_context
        .build()
        .map_err(|e| format!("invalid TLS configuration: {e}"))?;
    let provider = tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring);

    // Proxies: the attributes, else HTTP_PROXY / HTTPS_PROXY / NO_PROXY (as OpenTofu does).
    let http_proxy = non_empty(&s.http_proxy).map(str::to_string);
    let https_proxy = non_empty(&s.https_proxy).map(str::to_string);
    let proxy = if http_proxy.is_none() && https_proxy.is_none() {
        ProxyConfig::from_env()
    } else {
        let bad = |e: aws_smithy_http_client::proxy::ProxyError| format!("invalid proxy: {e}");
        let mut p = match (&http_proxy, &https_proxy) {
            (Some(h), Some(hs)) if h == hs => ProxyConfig::all(h.as_str()).map_err(bad)?,
            (_, Some(hs)) => ProxyConfig::https(hs.as_str()).map_err(bad)?,
            (Some(h), None) => ProxyConfig::http(h.as_str()).map_err(bad)?,
            (None, None) => unreachable!(),
        };
        if let Some(np) = non_empty(&s.no_proxy) {
            p = p.no_proxy(np);
        }
        p
    };
    if proxy.is_disabled() {
        return Ok(aws_smithy_http_client::Builder::new()
            .tls_provider(provider)
            .tls_context(tls_context)
            .build_https());
    }
    Ok(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, rc| {
            let mut b = aws_smithy_http_client::Connector::builder();
            b.set_connector_settings(settings.cloned());
            b.set_sleep_impl(rc.and_then(|rc| rc.sleep_impl()));
            b.proxy_config(proxy.clone())
                .tls_provider(provider.clone())
                .tls_context(tls_context.clone())
                .build()
        }),
    )
}
