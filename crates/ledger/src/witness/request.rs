//! The body of a C2SP tlog-witness `add-checkpoint` request: `old <size>`,
//! the consistency proof (one base64 hash per line), a blank line, and the
//! signed checkpoint.

use crate::hash::Hash;

/// Most consistency proof lines a request may carry.
const MAX_PROOF_LINES: usize = 63;

/// Why a request body is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed add-checkpoint request: {0}")]
pub struct RequestError(&'static str);

/// A request to cosign a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the latest checkpoint the witness cosigned (0 if none).
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint (note bytes).
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size).into_bytes();
        for hash in &self.proof {
            out.extend_from_slice(hash.to_base64().as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Parse a request body.
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        let mut rest = body;
        let mut next_line = || -> Result<&[u8], RequestError> {
            let end = rest
                .iter()
                .position(|b| *b == b'\n')
                .ok_or(RequestError("missing newline"))?;
            let line = &rest[..end];
            rest = &rest[end + 1..];
            Ok(line)
        };
        let old = next_line()?
            .strip_prefix(b"old ")
            .and_then(|n| std::str::from_utf8(n).ok())
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or(RequestError("bad old size line"))?;
        let mut proof = Vec::new();
        loop {
            let line = next_line()?;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(RequestError("more than 63 proof lines"));
            }
            let hash = std::str::from_utf8(line)
                .ok()
                .and_then(Hash::from_base64)
                .ok_or(RequestError("bad proof line"))?;
            proof.push(hash);
        }
        Ok(Self {
            old_size: old,
            proof,
            checkpoint: rest.to_vec(),
        })
    }
}
