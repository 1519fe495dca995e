//! `PageBuffer`: an input file's bytes, for commands that decode and decrypt in place.
//!
//! A large file (8 MiB or more) is read into anonymous memory that asks the kernel for
//! transparent huge pages, so filling it costs one page fault per 2 MiB instead of one per
//! 4 KiB: for a 64 MiB state those small faults were about half of `stateseal decrypt`'s time.
//! Smaller files and stdin use an ordinary `Vec`.
//!
//! The plaintext is decrypted into this memory. A mapping is left out of core dumps, and
//! dropping it unmaps it: the pages go back to the kernel, which clears them before any reuse.

use std::fs::File;
use std::io::{self, Read};
use std::ops::{Deref, DerefMut};

use memmap2::{Advice, MmapMut};
use stateseal_core::size::{read_capped, CappedError, TooLarge};

/// Files at least this large are read into huge-page memory.
const MAPPED_FROM: u64 = 8 << 20;

/// A file's bytes, in memory the caller may decode and decrypt in place.
pub enum PageBuffer {
    Mapped { map: MmapMut, len: usize },
    Heap(Vec<u8>),
}

impl PageBuffer {
    /// Reads `file` to its end, refusing more than `max` bytes (a file that says it is larger
    /// is not read at all).
    pub fn read(file: &mut File, max: u64) -> Result<PageBuffer, CappedError> {
        let size = file.metadata().map_err(CappedError::Io)?.len();
        if size > max {
            return Err(CappedError::TooLarge(TooLarge {
                limit: max,
                size: Some(size),
            }));
        }
        let cap = match usize::try_from(size) {
            Ok(cap) if size >= MAPPED_FROM => cap,
            _ => return read_to_vec(file, Vec::new(), max),
        };
        let mut map = MmapMut::map_anon(cap).map_err(CappedError::Io)?;
        // Both are hints: without them the buffer is still correct, only slower or dumpable.
        let _ = map.advise(Advice::HugePage);
        let _ = map.advise(Advice::DontDump);
        let len = read_full(file, &mut map).map_err(CappedError::Io)?;
        let mut probe = [0u8; 1];
        if len < cap || read_full(file, &mut probe).map_err(CappedError::Io)? == 0 {
            return Ok(PageBuffer::Mapped { map, len });
        }
        // The file grew while it was read: keep reading, into a `Vec`, up to the limit.
        let mut bytes = map.to_vec();
        bytes.push(probe[0]);
        read_to_vec(file, bytes, max)
    }
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

fn read_to_vec(file: &mut File, mut bytes: Vec<u8>, max: u64) -> Result<PageBuffer, CappedError> {
    read_capped(file, &mut bytes, max)?;
    Ok(PageBuffer::Heap(bytes))
}

impl From<Vec<u8>> for PageBuffer {
    fn from(bytes: Vec<u8>) -> PageBuffer {
        PageBuffer::Heap(bytes)
    }
}

impl Deref for PageBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            PageBuffer::Mapped { map, len } => &map[..*len],
            PageBuffer::Heap(v) => v,
        }
    }
}

impl DerefMut for PageBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            PageBuffer::Mapped { map, len } => &mut map[..*len],
            PageBuffer::Heap(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_back(bytes: &[u8]) -> PageBuffer {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        PageBuffer::read(&mut File::open(f.path()).unwrap(), u64::MAX).unwrap()
    }

    #[test]
    fn small_files_are_read_into_a_vec_and_large_ones_into_a_mapping() {
        let small = read_back(b"{\"serial\":1}");
        assert!(matches!(small, PageBuffer::Heap(_)));
        assert_eq!(&*small, b"{\"serial\":1}");

        let large: Vec<u8> = (0..(MAPPED_FROM as usize + 12345))
            .map(|i| i as u8)
            .collect();
        let mut read = read_back(&large);
        assert!(matches!(read, PageBuffer::Mapped { .. }));
        assert_eq!(read.len(), large.len());
        assert!(*read == large[..]);
        read[0] = 7;
        assert_eq!(read[0], 7);
    }

    #[test]
    fn a_file_over_the_limit_is_not_read() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&[1; 100]).unwrap();
        let mut file = File::open(f.path()).unwrap();
        match PageBuffer::read(&mut file, 99) {
            Err(CappedError::TooLarge(t)) => assert_eq!(
                t,
                TooLarge {
                    limit: 99,
                    size: Some(100)
                }
            ),
            other => panic!("{:?}", other.map(|b| b.len())),
        }
        // Nothing was read: the file offset is still at the start.
        use std::io::Seek;
        assert_eq!(file.stream_position().unwrap(), 0);
        assert_eq!(PageBuffer::read(&mut file, 100).unwrap().len(), 100);
    }
}
