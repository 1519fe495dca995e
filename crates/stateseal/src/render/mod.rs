//! What the commands print, by kind of output (ripgrep's printer layer): rendering only, no
//! decisions. Today the lock-conflict report; the fleet commands' tables, JSON and progress
//! move here with them.

pub mod lock_conflict;
