//! Segment files: the log is a folder of `audit-<first seq>.jsonl` files,
//! the seq zero-padded to 20 digits so names sort in log order. A new
//! segment starts when the current one would grow beyond the size limit,
//! or when the UTC day of a record differs from the day the segment began.
//! Each line is one record ([`super::record`]) followed by `\n`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::error::AuditError;
use super::record::Seq;
use super::Result;

/// Prefix of segment file names.
pub const PREFIX: &str = "audit-";
/// Suffix of segment file names.
pub const SUFFIX: &str = ".jsonl";
/// The log's checkpoints, in the audit folder.
pub const CHECKPOINTS: &str = "checkpoints.jsonl";
/// Witness countersignatures, in the audit folder.
pub const WITNESSES: &str = "witnesses.jsonl";
/// The lock file held by the one process appending.
pub const LOCK: &str = "audit.lock";

/// The file name of the segment whose first record is `first`.
pub fn segment_name(first: Seq) -> String {
    format!("{PREFIX}{first:020}{SUFFIX}")
}

/// The first seq a segment file name announces.
pub fn parse_segment_name(name: &str) -> Option<Seq> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment file found in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// Full path.
    pub path: PathBuf,
    /// File name.
    pub name: String,
    /// The seq its name announces.
    pub first: Seq,
}

/// Every segment in `dir`, in log order.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| AuditError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(first) = parse_segment_name(&name) {
            out.push(SegmentFile {
                path: entry.path(),
                name,
                first,
            });
        }
    }
    out.sort_by_key(|s| s.first);
    Ok(out)
}

/// One line of a segment.
#[derive(Debug)]
pub enum Line<'a> {
    /// A complete line (without its `\n`).
    Full {
        /// 1-based line number.
        no: u64,
        /// Byte offset where the line starts.
        offset: u64,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// Bytes after the last `\n`: a write cut short by a crash.
    Torn {
        /// 1-based line number.
        no: u64,
        /// Byte offset where it starts.
        offset: u64,
        /// How many bytes.
        len: usize,
    },
}

/// Reads a segment line by line with bounded memory.
pub struct LineReader {
    reader: BufReader<File>,
    path: PathBuf,
    buf: Vec<u8>,
    no: u64,
    offset: u64,
}

impl LineReader {
    /// Opens a segment (or any JSON Lines file).
    pub fn open(path: &Path) -> Result<LineReader> {
        let f = File::open(path).map_err(|e| AuditError::io(path, e))?;
        Ok(LineReader {
            reader: BufReader::with_capacity(1 << 16, f),
            path: path.to_path_buf(),
            buf: Vec::with_capacity(1024),
            no: 0,
            offset: 0,
        })
    }

    /// The next line, or None at the end.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| AuditError::io(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.no += 1;
        let offset = self.offset;
        self.offset += n as u64;
        if self.buf.last() == Some(&b'\n') {
            let len = self.buf.len() - 1;
            Ok(Some(Line::Full {
                no: self.no,
                offset,
                bytes: &self.buf[..len],
            }))
        } else {
            Ok(Some(Line::Torn {
                no: self.no,
                offset,
                len: n,
            }))
        }
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.no
    }
}

/// Syncs a folder, so a file created or renamed in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_segment_names_sort_and_parse() {
        assert_eq!(segment_name(1), "audit-00000000000000000001.jsonl");
        assert_eq!(parse_segment_name(&segment_name(12345)), Some(12345));
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert!(segment_name(99) < segment_name(100));
        assert_eq!(parse_segment_name("audit-1.jsonl"), None);
        assert_eq!(parse_segment_name("checkpoints.jsonl"), None);
    }

    #[test]
    fn audit_segment_reader_reports_torn_tail() {
        let dir = std::env::temp_dir().join(format!("tautan-audit-seg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(segment_name(1));
        std::fs::write(&p, b"{\"a\":1}\n{\"b\":2}\n{\"c\"").unwrap();
        let mut r = LineReader::open(&p).unwrap();
        assert!(
            matches!(r.next_line().unwrap(), Some(Line::Full { no: 1, offset: 0, bytes }) if bytes == b"{\"a\":1}")
        );
        assert!(matches!(
            r.next_line().unwrap(),
            Some(Line::Full {
                no: 2,
                offset: 8,
                ..
            })
        ));
        assert!(matches!(
            r.next_line().unwrap(),
            Some(Line::Torn {
                no: 3,
                offset: 16,
                len: 4
            })
        ));
        assert!(r.next_line().unwrap().is_none());
        assert_eq!(list_segments(&dir).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
