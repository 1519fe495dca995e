//! Reading inputs and writing outputs: stdin/stdout, and atomic file replacement (write a
//! temporary file in the same directory, fsync it, rename it over the target, fsync the
//! directory). A failed command leaves existing files untouched and creates none.
//!
//! Inputs are bounded (`--max-input-size`, default 1 GiB): a file larger than the limit is
//! refused before it is read, and stdin (or a device or pipe given as FILE) stops one byte past
//! it. A replaced file keeps what it was: a symbolic link is followed and its target rewritten
//! (the link stays), and the owner, group and mode are carried over or nothing is written.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use stateseal_core::size::{read_capped, CappedError, TooLarge};

use crate::failure::{exit, Failure};
use crate::page_buffer::PageBuffer;

/// The default of `--max-input-size`.
pub const DEFAULT_MAX_INPUT: &str = "1GiB";

/// An input: a file or stdin (`-`), as a `Vec` or, for in-place decryption, a [`PageBuffer`].
pub struct Input<B = Vec<u8>> {
    pub name: String,
    pub bytes: B,
}

/// Reads a file, or stdin for `None` and `-`, refusing more than `max` bytes.
pub fn read_input(arg: Option<&Path>, max: u64) -> Result<Input, Failure> {
    read_input_as(arg, max, |f| {
        let mut bytes = Vec::new();
        read_capped(f, &mut bytes, max).map(|()| bytes)
    })
}

/// [`read_input`] into memory for decoding and decrypting in place (large files get huge pages).
pub fn read_input_in_place(arg: Option<&Path>, max: u64) -> Result<Input<PageBuffer>, Failure> {
    read_input_as(arg, max, |f| PageBuffer::read(f, max))
}

fn read_input_as<B: From<Vec<u8>>>(
    arg: Option<&Path>,
    max: u64,
    read_file: impl FnOnce(&mut fs::File) -> Result<B, CappedError>,
) -> Result<Input<B>, Failure> {
    let p = match arg {
        Some(p) if p != Path::new("-") => p,
        _ => return read_stdin(max),
    };
    let name = p.display().to_string();
    let cannot_read = |e: std::io::Error| {
        let fix = if e.kind() == std::io::ErrorKind::NotFound {
            "check the path (relative paths are resolved after --chdir)"
        } else {
            "check the file's permissions"
        };
        Failure::new(exit::FAILURE, format!("cannot read {name}: {e}"), fix)
    };
    let mut file = fs::File::open(p).map_err(cannot_read)?;
    let size = file.metadata().map_err(cannot_read)?.len();
    if size > max {
        return Err(too_large(
            &name,
            TooLarge {
                limit: max,
                size: Some(size),
            },
        ));
    }
    let bytes = read_file(&mut file).map_err(|e| match e {
        CappedError::TooLarge(t) => too_large(&name, t),
        CappedError::Io(e) => cannot_read(e),
    })?;
    Ok(Input { name, bytes })
}

fn read_stdin<B: From<Vec<u8>>>(max: u64) -> Result<Input<B>, Failure> {
    let name = "<stdin>";
    let mut bytes = Vec::new();
    read_capped(&mut std::io::stdin().lock(), &mut bytes, max).map_err(|e| match e {
        CappedError::TooLarge(t) => too_large(name, t),
        CappedError::Io(e) => Failure::plain(exit::FAILURE, format!("cannot read stdin: {e}")),
    })?;
    Ok(Input {
        name: name.into(),
        bytes: bytes.into(),
    })
}

/// The error for an input over `--max-input-size`: names it, the size and the limit.
pub fn too_large(name: &str, t: TooLarge) -> Failure {
    Failure::new(
        exit::INPUT,
        format!("{name} is too large: {t} (--max-input-size)"),
        "check that this is the right input; to read a larger one, raise the limit, e.g. --max-input-size 4GiB",
    )
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
        Some(p) if p != Path::new("-") => replace_file(p, bytes),
        _ => {
            crate::stdio::stdout_bytes(bytes);
            Ok(())
        }
    }
}

/// The file that writing to `path` replaces: `path` itself, or the file a symbolic link at
/// `path` leads to (through every link). A dangling link, or an existing target that is not a
/// regular file (a device, a pipe, a directory), is refused: it cannot be replaced atomically.
pub fn write_target(path: &Path) -> Result<PathBuf, Failure> {
    let refuse = |why: String, fix: &str| {
        Failure::new(
            exit::FAILURE,
            format!(
                "cannot write {}: {why}; nothing was written",
                path.display()
            ),
            fix,
        )
    };
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).map_err(|e| {
            refuse(
                format!("it is a symbolic link whose target cannot be resolved ({e})"),
                "point the link at an existing file, or name the file itself",
            )
        })?,
        _ => path.to_path_buf(),
    };
    match fs::metadata(&target) {
        Ok(m) if !m.is_file() => Err(refuse(
            format!(
                "{} is not a regular file, so it cannot be replaced atomically",
                target.display()
            ),
            "name a regular file, or write to stdout (no -o) and redirect it",
        )),
        _ => Ok(target),
    }
}

/// Creates `path` with `bytes` and mode 0600, refusing to touch a file that exists (for keys:
/// an identity is never overwritten).
pub fn create_private_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| {
        Failure::plain(
            exit::FAILURE,
            format!("cannot create {}: {e}", path.display()),
        )
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(fail)
}

/// Atomically replaces (or creates) `path` with `bytes`. A symbolic link is followed: its target
/// is replaced and the link stays. An existing file keeps its owner, group and mode (when they
/// cannot be kept, nothing is written); a new file gets mode 0600, as states hold secrets.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let target = write_target(path)?;
    let fail = |what: &str, e: std::io::Error| {
        Failure::plain(
            exit::FAILURE,
            format!("cannot write {}: {what}: {e}", path.display()),
        )
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let existing = fs::metadata(&target).ok();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.",
            target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("stateseal")
        ))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| fail("creating a temporary file", e))?;
    tmp.write_all(bytes).map_err(|e| fail("writing", e))?;
    match &existing {
        Some(meta) => keep_owner_and_mode(tmp.as_file(), meta)
            .map_err(|(what, e)| fail(&what, e).with_fix(OWNER_FIX))?,
        None => {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|e| fail("setting permissions", e))?;
        }
    }
    tmp.as_file().sync_all().map_err(|e| fail("syncing", e))?;
    tmp.persist(&target)
        .map_err(|e| fail("renaming into place", e.error))?;
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

const OWNER_FIX: &str = "run stateseal as the file's owner (or as root), or give it a copy you own and move the result into place yourself";

/// Gives `file` the owner, group and mode of `meta`. The owner first: changing it may clear
/// the set-user-ID and set-group-ID bits, which the mode then restores.
fn keep_owner_and_mode(
    file: &fs::File,
    meta: &fs::Metadata,
) -> Result<(), (String, std::io::Error)> {
    use std::os::unix::fs::MetadataExt;
    let now = file
        .metadata()
        .map_err(|e| ("reading the temporary file".to_string(), e))?;
    let uid = (now.uid() != meta.uid()).then_some(meta.uid());
    let gid = (now.gid() != meta.gid()).then_some(meta.gid());
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::fchown(file, uid, gid).map_err(|e| {
            (
                format!(
                    "keeping its owner and group (uid {}, gid {})",
                    meta.uid(),
                    meta.gid()
                ),
                e,
            )
        })?;
    }
    file.set_permissions(meta.permissions())
        .map_err(|e| ("keeping its mode".to_string(), e))
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
