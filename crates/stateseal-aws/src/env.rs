//! The environment and path helpers every AWS setting reads through: an unset and an empty
//! variable or attribute mean the same (as in OpenTofu), and `~/` is the home directory.

/// An environment variable, `None` when unset or empty.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// An optional attribute, `None` when unset or empty.
pub(crate) fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|v| !v.is_empty())
}

/// `~/x` as `$HOME/x`; anything else unchanged.
pub(crate) fn expand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), env("HOME")) {
        (Some(rest), Some(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}
