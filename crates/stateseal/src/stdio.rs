//! Everything the CLI prints goes through here (`outln!`, `out!`, `errln!`, [`stdout_bytes`]),
//! so a closed stdout ends a command quietly, as ripgrep does: `stateseal inspect F | head -1`
//! prints no panic and no error line. Rust's `println!` panics when stdout is a pipe whose
//! reader has gone (Rust ignores SIGPIPE, so the write fails with `BrokenPipe`).
//!
//! A broken pipe is not an error of the command: the rest of its output is dropped, the command
//! finishes what it was doing (a rekey of ten files still rekeys the ten) and exits with the code
//! it would have had. Any other write error on stdout (a full disk behind `> file`) is kept and
//! reported by [`check`] once the command is done, with exit code 1. Writes to stderr ignore
//! errors: there is nowhere left to report them.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::failure::{exit, Failure};

/// Prints to stdout like `print!`, quietly dropping the output once stdout is closed.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdio::stdout_fmt(format_args!($($arg)*))
    };
}

/// Prints a line to stdout like `println!`, quietly dropping it once stdout is closed.
macro_rules! outln {
    () => {
        $crate::stdio::stdout_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdio::stdout_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints a line to stderr like `eprintln!`, ignoring write errors instead of panicking.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::stdio::stderr_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Set once stdout has failed: nothing more is written to it.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// The first stdout error that was not a closed pipe.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Writes formatted text to stdout (see the module documentation for errors).
pub fn stdout_fmt(args: fmt::Arguments<'_>) {
    write_stdout(|o| o.write_fmt(args));
}

/// Writes bytes to stdout (see the module documentation for errors).
pub fn stdout_bytes(bytes: &[u8]) {
    write_stdout(|o| o.write_all(bytes));
}

fn write_stdout(write: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = write(&mut out).and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
            failed.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Writes formatted text to stderr, ignoring errors.
pub fn stderr_fmt(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// The command's stdout error, if writing failed for another reason than a closed pipe.
pub fn check() -> Result<(), Failure> {
    let failed = FAILED.lock().unwrap_or_else(|p| p.into_inner()).take();
    match failed {
        None => Ok(()),
        Some(e) => Err(Failure::plain(
            exit::FAILURE,
            format!("cannot write to stdout: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    /// Every print of the CLI goes through this module: a `println!` elsewhere would panic on
    /// a closed pipe again.
    #[test]
    fn no_other_module_prints_with_the_std_macros() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        // Every `.rs` file below src/, the command and render folders included.
        let mut files = Vec::new();
        let mut dirs = vec![src];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 20, "the walk found the sources: {files:?}");
        for path in files {
            if path.file_name().is_some_and(|n| n == "stdio.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                let hits = ["print!(", "println!(", "io::stdout()"]
                    .iter()
                    .any(|m| code.contains(m));
                if hits {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(offenders.is_empty(), "{offenders:#?}");
    }
}
