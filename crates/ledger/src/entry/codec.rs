//! The canonical binary encoding of entries: big-endian fixed-width integers,
//! raw 32-byte hashes, length-prefixed identifiers and `u16`-counted lists.
//! Every value has exactly one encoding, and decoding rejects anything else
//! (trailing bytes included), so `encode(decode(b)) == b` for every accepted
//! `b`.

use super::error::DecodeError;
use crate::hash::{HASH_SIZE, Hash};

/// Builds an encoding.
#[derive(Default)]
pub(crate) struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    pub(crate) fn hash(&mut self, h: &Hash) {
        self.raw(&h.0);
    }

    /// A short ASCII string (an identifier): `u8` length, then the bytes.
    pub(crate) fn short_str(&mut self, s: &str) {
        // Identifiers are validated to at most 63 bytes when constructed.
        self.u8(s.len() as u8);
        self.raw(s.as_bytes());
    }

    /// A list: `u16` count, then each item.
    pub(crate) fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        // Lists are bounded when constructed (see `MAX_LIST_LEN`).
        self.u16(items.len() as u16);
        for item in items {
            each(self, item);
        }
    }
}

/// Reads an encoding front to back.
pub(crate) struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.rest.len()))
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn hash(&mut self) -> Result<Hash, DecodeError> {
        Ok(Hash(self.array::<HASH_SIZE>()?))
    }

    pub(crate) fn array64(&mut self) -> Result<[u8; 64], DecodeError> {
        self.array()
    }

    pub(crate) fn array32(&mut self) -> Result<[u8; 32], DecodeError> {
        self.array()
    }

    pub(crate) fn short_str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u8()?);
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::NotAscii)
    }

    pub(crate) fn list<T>(
        &mut self,
        mut each: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = usize::from(self.u16()?);
        // Each item takes at least one byte: a count beyond the input is a lie.
        if count > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        (0..count).map(|_| each(self)).collect()
    }
}
