//! `multipart/related` bodies (RFC 2387), as DICOMweb sends and expects them:
//! a push parser ([`Splitter`]) that never holds more than a chunk and a
//! boundary's length, spooling parts to temporary files ([`spool`]) or
//! collecting them in memory ([`parts`]); and [`build`] for responses.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use memchr::memmem;
use tokio::io::AsyncWriteExt;

use crate::error::{ImagingError, Result};

/// Longest header block accepted for one part.
const MAX_PART_HEADERS: usize = 16 * 1024;

/// The `boundary` parameter of a Content-Type value.
pub fn boundary(content_type: &str) -> Result<String> {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("multipart/related") {
        return Err(ImagingError::BadRequest(format!(
            "expected multipart/related, got {media:?}"
        )));
    }
    parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ImagingError::BadRequest("multipart/related without boundary".into()))
}

/// What the parser found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A part starts, with its Content-Type if it has one.
    Part {
        /// The part's Content-Type header.
        content_type: Option<String>,
    },
    /// Bytes of the current part's body.
    Data(Vec<u8>),
    /// The current part ended.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Preamble,
    Delimiter,
    Headers,
    Body,
    Done,
}

/// A push parser of a `multipart/related` body: [`Splitter::push`] bytes as
/// they come, take [`Splitter::next_event`] until it says `None`.
#[derive(Debug)]
pub struct Splitter {
    delimiter: Vec<u8>,
    buffer: Vec<u8>,
    state: State,
}

impl Splitter {
    /// A parser for parts separated by `boundary`.
    pub fn new(boundary: &str) -> Self {
        Self {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            // the first delimiter may open the body without a line break
            buffer: b"\r\n".to_vec(),
            state: State::Preamble,
        }
    }

    /// Add the next bytes of the body.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next event the bytes pushed so far give; `None` when more bytes
    /// are needed (or the closing delimiter was seen).
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Preamble => match memmem::find(&self.buffer, &self.delimiter) {
                    Some(at) => {
                        self.buffer.drain(..at + self.delimiter.len());
                        self.state = State::Delimiter;
                    }
                    None => {
                        let keep = self.delimiter.len() - 1;
                        let drop = self.buffer.len().saturating_sub(keep);
                        self.buffer.drain(..drop);
                        return Ok(None);
                    }
                },
                State::Delimiter => {
                    if self.buffer.starts_with(b"--") {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    let Some(at) = memmem::find(&self.buffer, b"\r\n") else {
                        if self.buffer.len() > MAX_PART_HEADERS {
                            return Err(bad("multipart delimiter line too long"));
                        }
                        return Ok(None);
                    };
                    if self.buffer[..at].iter().any(|b| !matches!(b, b' ' | b'\t')) {
                        return Err(bad("text after a multipart delimiter"));
                    }
                    self.buffer.drain(..at + 2);
                    self.state = State::Headers;
                }
                State::Headers => {
                    let end = if self.buffer.starts_with(b"\r\n") {
                        Some(0)
                    } else {
                        memmem::find(&self.buffer, b"\r\n\r\n").map(|at| at + 2)
                    };
                    let Some(end) = end else {
                        if self.buffer.len() > MAX_PART_HEADERS {
                            return Err(bad("multipart part headers too long"));
                        }
                        return Ok(None);
                    };
                    let headers = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                    self.buffer.drain(..end + 2);
                    self.state = State::Body;
                    let content_type = headers
                        .split("\r\n")
                        .filter_map(|line| line.split_once(':'))
                        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-type"))
                        .map(|(_, value)| value.trim().to_string());
                    return Ok(Some(Event::Part { content_type }));
                }
                State::Body => {
                    return Ok(match memmem::find(&self.buffer, &self.delimiter) {
                        Some(0) => {
                            self.buffer.drain(..self.delimiter.len());
                            self.state = State::Delimiter;
                            Some(Event::End)
                        }
                        Some(at) => Some(Event::Data(self.buffer.drain(..at).collect())),
                        None => {
                            let safe = self.buffer.len().saturating_sub(self.delimiter.len() - 1);
                            (safe > 0).then(|| Event::Data(self.buffer.drain(..safe).collect()))
                        }
                    });
                }
            }
        }
    }

    /// Whether the closing delimiter has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

fn bad(message: &str) -> ImagingError {
    ImagingError::BadRequest(message.to_string())
}

/// The bodies of the parts of a body held in memory (headers dropped).
pub fn parts(body: &[u8], boundary: &str) -> Result<Vec<Vec<u8>>> {
    let mut splitter = Splitter::new(boundary);
    splitter.push(body);
    let mut out: Vec<Vec<u8>> = Vec::new();
    while let Some(event) = splitter.next_event()? {
        match event {
            Event::Part { .. } => out.push(Vec::new()),
            Event::Data(data) => {
                if let Some(part) = out.last_mut() {
                    part.extend_from_slice(&data);
                }
            }
            Event::End => {}
        }
    }
    if !splitter.is_done() {
        return Err(bad("multipart body ends before its closing delimiter"));
    }
    Ok(out)
}

/// One part of a request body, written to a temporary file.
#[derive(Debug)]
pub struct SpooledPart {
    /// The part's Content-Type header.
    pub content_type: Option<String>,
    /// The file holding its body (deleted when dropped).
    pub path: tempfile::TempPath,
}

/// Write each part of a body arriving as `chunks` to its own temporary file.
/// Refuses bodies over `limit` bytes ([`ImagingError::TooLarge`]) and bodies
/// that stall for `idle` between chunks ([`ImagingError::Stalled`]).
pub async fn spool<S, E>(
    mut chunks: S,
    boundary: &str,
    limit: u64,
    idle: Duration,
) -> Result<Vec<SpooledPart>>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut splitter = Splitter::new(boundary);
    let mut spooled = Vec::new();
    let mut current: Option<tokio::fs::File> = None;
    let mut received: u64 = 0;
    loop {
        while let Some(event) = splitter.next_event()? {
            match event {
                Event::Part { content_type } => {
                    let path = tempfile::NamedTempFile::new()
                        .map_err(staging_error)?
                        .into_temp_path();
                    current = Some(
                        tokio::fs::File::create(&path)
                            .await
                            .map_err(staging_error)?,
                    );
                    spooled.push(SpooledPart { content_type, path });
                }
                Event::Data(data) => {
                    if let Some(file) = current.as_mut() {
                        file.write_all(&data).await.map_err(staging_error)?;
                    }
                }
                Event::End => {
                    if let Some(mut file) = current.take() {
                        file.flush().await.map_err(staging_error)?;
                    }
                }
            }
        }
        if splitter.is_done() {
            return Ok(spooled);
        }
        let chunk = match tokio::time::timeout(idle, chunks.next()).await {
            Err(_) => {
                return Err(ImagingError::Stalled(format!(
                    "no request body bytes for {} s",
                    idle.as_secs()
                )));
            }
            Ok(None) => return Err(bad("multipart body ends before its closing delimiter")),
            Ok(Some(Err(e))) => {
                return Err(ImagingError::BadRequest(format!("request body: {e}")));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        received += chunk.len() as u64;
        if received > limit {
            return Err(ImagingError::TooLarge { limit });
        }
        splitter.push(&chunk);
    }
}

fn staging_error(e: std::io::Error) -> ImagingError {
    ImagingError::Network(format!("cannot stage an upload: {e}"))
}

/// The opening lines of a part with `content_type`.
pub fn part_head(boundary: &str, content_type: &str) -> Vec<u8> {
    format!("--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").into_bytes()
}

/// The closing delimiter of a body.
pub fn closing(boundary: &str) -> Vec<u8> {
    format!("--{boundary}--\r\n").into_bytes()
}

/// A `multipart/related` body of `parts`, each with `content_type`.
pub fn build(parts: &[&[u8]], content_type: &str, boundary: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(parts.iter().map(|p| p.len() + 128).sum());
    for part in parts {
        body.extend_from_slice(&part_head(boundary, content_type));
        body.extend_from_slice(part);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(&closing(boundary));
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_bodies_parse_back_into_their_parts() {
        let body = build(&[b"first\r\npart", b"second"], "application/dicom", "XyZ");
        assert_eq!(
            parts(&body, "XyZ").expect("valid"),
            [b"first\r\npart".to_vec(), b"second".to_vec()]
        );
    }

    #[test]
    fn bytes_pushed_one_at_a_time_give_the_same_parts() {
        let body = build(&[b"ab--XyZ\r\n", b"", b"c"], "application/dicom", "XyZ");
        let mut splitter = Splitter::new("XyZ");
        let (mut parts, mut types) = (Vec::<Vec<u8>>::new(), Vec::new());
        for byte in &body {
            splitter.push(std::slice::from_ref(byte));
            while let Some(event) = splitter.next_event().expect("valid") {
                match event {
                    Event::Part { content_type } => {
                        types.push(content_type);
                        parts.push(Vec::new());
                    }
                    Event::Data(data) => parts.last_mut().expect("open").extend(data),
                    Event::End => {}
                }
            }
        }
        assert!(splitter.is_done());
        assert_eq!(parts, [b"ab--XyZ\r\n".to_vec(), Vec::new(), b"c".to_vec()]);
        assert_eq!(types[0].as_deref(), Some("application/dicom"));
    }

    #[test]
    fn boundary_comes_from_the_content_type() {
        let ct = r#"multipart/related; type="application/dicom"; boundary="abc123""#;
        assert_eq!(boundary(ct).expect("valid"), "abc123");
        assert!(boundary("application/json").is_err());
    }

    #[test]
    fn an_unclosed_part_is_refused() {
        assert!(parts(b"--b\r\nContent-Type: x\r\n\r\ndata", "b").is_err());
    }

    #[tokio::test]
    async fn spooling_stops_at_the_size_limit() {
        let body = build(&[&[7u8; 4096]], "application/dicom", "b");
        let chunks = futures::stream::iter(
            body.chunks(1000)
                .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        let refused = spool(chunks, "b", 3000, Duration::from_secs(5)).await;
        assert!(matches!(
            refused,
            Err(ImagingError::TooLarge { limit: 3000 })
        ));
        let chunks = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(body))]);
        let parts = spool(chunks, "b", 1 << 20, Duration::from_secs(5))
            .await
            .expect("spooled");
        assert_eq!(
            std::fs::read(&parts[0].path).expect("file"),
            vec![7u8; 4096]
        );
    }
}
