//! Workspace names every crate shares: the one that always exists (OpenTofu's
//! `backend.DefaultStateName`), so no crate writes the literal `"default"` itself.

/// The workspace every backend has, and the one used when none is chosen.
pub const DEFAULT_WORKSPACE: &str = "default";
