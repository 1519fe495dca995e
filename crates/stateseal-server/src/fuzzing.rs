//! Entry point of the server's cargo-fuzz target (`fuzz/fuzz_targets/server_request.rs`) and of
//! its replay test: every parser that reads a client's bytes, so that none of them can panic
//! (a panic would turn a bad request into a dropped connection instead of a 4xx). The replay
//! test runs the inline hostile inputs below and every seed in `fuzz/corpus/server_request/`.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::protocol::parse_lock_info;
use crate::state_path::{percent_decode, query_value, Resource};
use crate::ui::{diff, form_token, session, state_view};

/// One request's worth of client bytes, read as each thing a client sends: a URL path, a query
/// string or form body, a lock-info body, a cookie header and a state (as the console reads
/// versions: outputs, instances, key providers, a diff).
pub fn request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Resource::parse(&text);
    let _ = percent_decode(&text);
    for name in ["prefix", "csrf", "a", "b", "sort"] {
        let _ = query_value(Some(&text), name);
    }
    let _ = parse_lock_info(data);
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, value);
        let _ = session::cookie_id(&headers);
        let _ = form_token::cookie(&headers);
        let key = form_token::FormKey::default();
        let _ = key.check(&headers, &text);
        let _ = key.issue(&headers);
        let mut auth = HeaderMap::new();
        auth.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(data).unwrap_or(HeaderValue::from_static("")),
        );
        let _ = crate::auth::parse_credentials(&auth);
    }
    let _ = state_view::key_providers(data);
    if let Ok(state) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = state_view::outputs(&state);
        let _ = state_view::instances(&state);
        let _ = diff::diff(&serde_json::Value::Null, &state);
        let _ = diff::diff(&state, &state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile shapes of each input, replayed on every test run (the fuzz target explores further).
    #[test]
    fn hostile_requests_never_panic() {
        let inputs: [&[u8]; 14] = [
            b"",
            b"/state/../x",
            b"/state/a%2",
            b"/state/%ff%fe/lock",
            b"prefix=%&csrf=%zz&a=1&a=2",
            b"{\"ID\":\"\"}",
            b"{\"ID\":1}",
            b"\xff\xfe{",
            b"stateseal_session=; stateseal_session==;;=",
            b"{\"outputs\":{\"x\":{\"value\":null,\"sensitive\":\"yes\"}},\"resources\":[{\"instances\":7}]}",
            b"{\"resources\":[{\"mode\":\"managed\",\"type\":\"t\",\"name\":\"<script>\",\"instances\":[{\"index_key\":[[]],\"attributes\":[],\"sensitive_attributes\":[{\"type\":1}]}]}]}",
            b"{\"encryption_version\":\"v0\",\"meta\":{\"\":\"\"},\"encrypted_data\":\"\"}",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            b"{\"outputs\":[],\"resources\":{}}",
        ];
        for input in inputs {
            request(input);
        }
    }

    /// The seeds kept for the fuzz target (cookies, form tokens, credentials, paths…).
    #[test]
    fn corpus_seeds_never_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/server_request");
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).expect("the server_request corpus") {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            request(&data);
            seeds += 1;
        }
        assert!(seeds >= 10, "only {seeds} seeds in {}", dir.display());
    }
}
