//! Progress events: what a long fleet operation tells its caller while it runs (the CLI turns
//! them into a progress bar or log lines).

/// One step of an audit, rekey or lock listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The listing is done: this many objects will be read.
    Listed { objects: usize },
    /// One object was read and described.
    Read { key: String },
    /// The work on states starts: this many.
    Started { states: usize },
    /// One state is done; `outcome` is its outcome's word (`audited`, or the `word()` of a
    /// rekey or SSE migration outcome: `rekeyed`, `already-primary`, …), never free text.
    Finished { key: String, outcome: &'static str },
}
