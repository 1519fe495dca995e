//! What the commands print, by kind of output (ripgrep's printer layer): rendering only, no
//! decisions. Tables, JSON reports, progress bars and the lock-conflict report.

pub mod json;
pub mod lock_conflict;
pub mod progress;
pub mod table;
