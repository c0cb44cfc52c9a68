//! The audit trail: every state transition appended to a file as one JSON line, so that a reader
//! (or `read_audit_log`) can reconstruct a session's history after the fact.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use jvpn_session::AuditRecord;

/// An append-only JSON-lines audit file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

/// Reading an audit file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditReadError {
    /// The file could not be read.
    #[error("cannot read audit log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A line is not an audit record (truncated write, or not a jvpn audit file).
    #[error("{path}:{line}: not an audit record: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the parser said.
        message: String,
    },
}

impl AuditLog {
    /// Opens `path` for appending, creating it (mode 0640) if needed.
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o640);
        }
        let file = options.open(path)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line. A single `write` of the whole line keeps concurrent
    /// appenders (O_APPEND) from interleaving inside a record.
    pub fn append(&mut self, record: &AuditRecord) -> io::Result<()> {
        let mut line = record.to_json_line();
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()
    }
}

/// Reads every record of an audit file, in order.
pub fn read_audit_log(path: &Path) -> Result<Vec<AuditRecord>, AuditReadError> {
    let io_error = |source| AuditReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io_error)?);
    let mut records = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(io_error)?;
        if line.trim().is_empty() {
            continue;
        }
        let record = AuditRecord::from_json_line(&line).map_err(|e| AuditReadError::Malformed {
            path: path.to_path_buf(),
            line: index + 1,
            message: e.to_string(),
        })?;
        records.push(record);
    }
    Ok(records)
}
