//! The archive file: JSON lines, gzip-compressed when the name ends in `.gz`; a header
//! first, then per table a start line, its rows and an end line, then a trailer holding the
//! SHA-256 of every byte before it. Written to `<file>.partial` and renamed when complete,
//! so a file under the final name is always whole.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

fn gzipped(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

/// Writes an archive line by line, hashing what it writes.
pub struct ArchiveWriter {
    path: PathBuf,
    partial: PathBuf,
    sink: Option<Sink>,
    digest: Sha256,
    line: Vec<u8>,
}

impl ArchiveWriter {
    pub fn create(path: &Path) -> Result<ArchiveWriter> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(io(&partial))?;
        let buffered = BufWriter::with_capacity(1 << 20, file);
        let sink = match gzipped(path) {
            true => Sink::Gzip(GzEncoder::new(buffered, Compression::fast())),
            false => Sink::Plain(buffered),
        };
        Ok(ArchiveWriter {
            path: path.to_owned(),
            partial,
            sink: Some(sink),
            digest: Sha256::new(),
            line: Vec::with_capacity(4096),
        })
    }

    /// Writes one line (`value` as compact JSON), counted in the digest.
    pub fn line(&mut self, value: &impl Serialize) -> Result<()> {
        self.encode(value)?;
        self.digest.update(&self.line);
        self.write_line()
    }

    fn encode(&mut self, value: &impl Serialize) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value).map_err(|e| Error::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.line.push(b'\n');
        Ok(())
    }

    fn write_line(&mut self) -> Result<()> {
        let written = match &mut self.sink {
            Some(Sink::Plain(w)) => w.write_all(&self.line),
            Some(Sink::Gzip(w)) => w.write_all(&self.line),
            None => Ok(()),
        };
        written.map_err(io(&self.partial))
    }

    /// The digest of every line written so far.
    pub fn digest(&self) -> String {
        hex::encode(self.digest.clone().finalize())
    }

    /// Writes the last line (not counted in the digest), flushes it to disk, and gives the
    /// file its final name.
    pub fn finish(mut self, last: &impl Serialize) -> Result<()> {
        self.encode(last)?;
        self.write_line()?;
        let buffered = match self.sink.take() {
            Some(Sink::Plain(w)) => w,
            Some(Sink::Gzip(w)) => w.finish().map_err(io(&self.partial))?,
            None => return Ok(()),
        };
        let file = buffered.into_inner().map_err(|e| Error::Io {
            path: self.partial.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io(&self.partial))?;
        std::fs::rename(&self.partial, &self.path).map_err(io(&self.path))
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        // An archive left unfinished (an error, a cancelled export) is not kept.
        if self.sink.is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// Reads an archive line by line, hashing what it reads, and knowing the line number.
pub struct ArchiveReader {
    pub path: PathBuf,
    input: Box<dyn BufRead + Send>,
    digest: Sha256,
    pub line_no: u64,
    /// The line last returned, not yet in the digest.
    buf: Vec<u8>,
}

impl ArchiveReader {
    pub fn open(path: &Path) -> Result<ArchiveReader> {
        let file = File::open(path).map_err(io(path))?;
        let input: Box<dyn BufRead + Send> = if gzipped(path) {
            Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(file)))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, file))
        };
        Ok(ArchiveReader {
            path: path.to_owned(),
            input,
            digest: Sha256::new(),
            line_no: 0,
            buf: Vec::with_capacity(4096),
        })
    }

    /// An error at the current line.
    pub fn invalid(&self, detail: impl Into<String>) -> Error {
        Error::ArchiveInvalid {
            path: self.path.clone(),
            line: self.line_no,
            detail: detail.into(),
        }
    }

    /// The next line as JSON, `None` at the end.
    pub fn next(&mut self) -> Result<Option<Value>> {
        self.digest.update(&self.buf);
        self.buf.clear();
        let read = self.input.read_until(b'\n', &mut self.buf);
        self.line_no += 1;
        match read {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(self.invalid(format!("cannot read: {e}"))),
        }
        if self.buf.last() != Some(&b'\n') {
            return Err(self.invalid("the file ends in the middle of a line (truncated)"));
        }
        serde_json::from_slice(&self.buf)
            .map(Some)
            .map_err(|e| self.invalid(format!("not a JSON line: {e}")))
    }

    /// The digest of every line before the one last returned.
    pub fn digest(&self) -> String {
        hex::encode(self.digest.clone().finalize())
    }
}
