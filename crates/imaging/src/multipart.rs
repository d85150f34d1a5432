//! `multipart/related` bodies (RFC 2387), as DICOMweb sends and expects them.

use crate::error::{ImagingError, Result};

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

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The bodies of the parts (headers dropped).
pub fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>> {
    let open = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let start = find(body, open.as_bytes(), 0)
        .ok_or_else(|| ImagingError::BadRequest("no multipart boundary in body".into()))?;
    let mut at = start + open.len();
    let mut out = Vec::new();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(out);
        }
        let headers_end = find(body, b"\r\n\r\n", at)
            .ok_or_else(|| ImagingError::BadRequest("multipart part without headers end".into()))?;
        let content = headers_end + 4;
        let end = find(body, delimiter.as_bytes(), content)
            .ok_or_else(|| ImagingError::BadRequest("multipart part not closed".into()))?;
        out.push(&body[content..end]);
        at = end + delimiter.len();
    }
}

/// A `multipart/related` body of `parts`, each with `content_type`.
pub fn build(parts: &[&[u8]], content_type: &str, boundary: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(parts.iter().map(|p| p.len() + 128).sum());
    for part in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(part);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
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
            [&b"first\r\npart"[..], b"second"]
        );
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
}
