//! Reading inputs and writing outputs: stdin/stdout, and atomic file replacement (write a
//! temporary file in the same directory, fsync it, rename it over the target, fsync the
//! directory). A failed command leaves existing files untouched and creates none.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::failure::{exit, Failure};
use crate::page_buffer::PageBuffer;

/// An input: a file or stdin (`-`), as a `Vec` or, for in-place decryption, a [`PageBuffer`].
pub struct Input<B = Vec<u8>> {
    pub name: String,
    pub bytes: B,
}

pub fn read_input(arg: Option<&Path>) -> Result<Input, Failure> {
    read_input_as(arg, |f| {
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map(|_| bytes)
    })
}

/// [`read_input`] into memory for decoding and decrypting in place (large files get huge pages).
pub fn read_input_in_place(arg: Option<&Path>) -> Result<Input<PageBuffer>, Failure> {
    read_input_as(arg, PageBuffer::read)
}

fn read_input_as<B: From<Vec<u8>>>(
    arg: Option<&Path>,
    read_file: impl FnOnce(&mut fs::File) -> std::io::Result<B>,
) -> Result<Input<B>, Failure> {
    match arg {
        None => read_stdin(),
        Some(p) if p == Path::new("-") => read_stdin(),
        Some(p) => {
            let bytes = fs::File::open(p)
                .and_then(|mut f| read_file(&mut f))
                .map_err(|e| {
                    let fix = if e.kind() == std::io::ErrorKind::NotFound {
                        "check the path (relative paths are resolved after --chdir)"
                    } else {
                        "check the file's permissions"
                    };
                    Failure::new(
                        exit::FAILURE,
                        format!("cannot read {}: {e}", p.display()),
                        fix,
                    )
                })?;
            Ok(Input {
                name: p.display().to_string(),
                bytes,
            })
        }
    }
}

fn read_stdin<B: From<Vec<u8>>>() -> Result<Input<B>, Failure> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::plain(exit::FAILURE, format!("cannot read stdin: {e}")))?;
    Ok(Input {
        name: "<stdin>".into(),
        bytes: bytes.into(),
    })
}

impl<B: std::ops::Deref<Target = [u8]>> Input<B> {
    /// Refuses an empty input (OpenTofu treats a zero-length state as "no state").
    pub fn require_content(&self) -> Result<(), Failure> {
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Failure::new(
                exit::INPUT,
                format!("{} is empty: there is no state or plan in it", self.name),
                "pass a non-empty state, plan or envelope",
            ));
        }
        Ok(())
    }
}

/// Writes `bytes` to `out` atomically, or to stdout when `out` is `None` or `-`.
pub fn write_output(out: Option<&Path>, bytes: &[u8]) -> Result<(), Failure> {
    match out {
        None => write_stdout(bytes),
        Some(p) if p == Path::new("-") => write_stdout(bytes),
        Some(p) => replace_file(p, bytes),
    }
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .map_err(|e| Failure::plain(exit::FAILURE, format!("cannot write to stdout: {e}")))
}

/// Atomically replaces (or creates) `path` with `bytes`, keeping an existing file's permissions
/// (new files get 0600: states hold secrets).
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let fail = |what: &str, e: std::io::Error| {
        Failure::plain(
            exit::FAILURE,
            format!("cannot write {}: {what}: {e}", path.display()),
        )
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let existing = fs::metadata(path).ok();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("stateseal")
        ))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| fail("creating a temporary file", e))?;
    tmp.write_all(bytes).map_err(|e| fail("writing", e))?;
    if let Some(meta) = &existing {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .map_err(|e| fail("setting permissions", e))?;
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|e| fail("setting permissions", e))?;
        }
    }
    tmp.as_file().sync_all().map_err(|e| fail("syncing", e))?;
    tmp.persist(path)
        .map_err(|e| fail("renaming into place", e.error))?;
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_permissions_and_leaves_no_temporary_files() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        replace_file(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let fresh = d.path().join("n.json");
        replace_file(&fresh, b"x").unwrap();
        assert_eq!(
            fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2);
    }
}
