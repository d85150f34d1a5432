//! Signed entries: a statement, its author and the author's signature. These
//! bytes are the log's entries (its leaves).
//!
//! ```text
//! entry   = envelope (u8 = 1) || author (u8 len || ascii) || statement || signature (64 bytes)
//! message = "cohort-ledger/entry/v1\n" || origin (u8 len || ascii) || entry without signature
//! ```
//!
//! The signature (Ed25519, verified strictly) covers the log's origin, so an
//! entry signed for one log does not verify in another; it does not cover the
//! entry's position, so any sequencer can order entries.

use ed25519_dalek::{Signer, SigningKey};

use super::codec::{Decoder, Encoder};
use super::error::{DecodeError, ValueError};
use super::ids::{LogOrigin, PartyId};
use super::public_key::PublicKey;
use super::statement::Statement;
use super::statement_codec::get_party;
use crate::hash::{Hash, leaf_hash};
use crate::signatures::verify_one;
use crate::tiles::MAX_ENTRY_SIZE;

/// The only envelope version so far.
const ENVELOPE_V1: u8 = 1;

/// Domain separation of entry signatures.
const SIGNING_DOMAIN: &[u8] = b"cohort-ledger/entry/v1\n";

/// Size of an Ed25519 signature.
const SIGNATURE_SIZE: usize = 64;

/// A statement signed by its author, with its canonical bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEntry {
    author: PartyId,
    statement: Statement,
    signature: [u8; SIGNATURE_SIZE],
    bytes: Vec<u8>,
}

impl SignedEntry {
    /// Sign `statement` as `author` for the log `origin`.
    pub fn sign(
        origin: &LogOrigin,
        author: PartyId,
        statement: Statement,
        key: &SigningKey,
    ) -> Result<Self, ValueError> {
        let body = body_bytes(&author, &statement);
        let size = body.len() + SIGNATURE_SIZE;
        if size > MAX_ENTRY_SIZE {
            return Err(ValueError::EntryTooLarge(size));
        }
        let signature = key.sign(&message(origin, &body)).to_bytes();
        let mut bytes = body;
        bytes.extend_from_slice(&signature);
        Ok(Self {
            author,
            statement,
            signature,
            bytes,
        })
    }

    /// Decode an entry's canonical bytes (the signature is not checked here).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let envelope = d.u8()?;
        if envelope != ENVELOPE_V1 {
            return Err(DecodeError::UnknownEnvelope(envelope));
        }
        let author = get_party(&mut d)?;
        let statement = Statement::read(&mut d)?;
        let signature = d.array64()?;
        d.finish()?;
        Ok(Self {
            author,
            statement,
            signature,
            bytes: bytes.to_vec(),
        })
    }

    /// Who signed.
    pub fn author(&self) -> &PartyId {
        &self.author
    }

    /// What is stated.
    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// The author's Ed25519 signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_SIZE] {
        &self.signature
    }

    /// The entry's bytes, as stored in the log.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The entry hash: its RFC 6962 leaf hash, by which other entries refer
    /// to it.
    pub fn entry_hash(&self) -> Hash {
        leaf_hash(&self.bytes)
    }

    /// The message the author signed, for the log `origin`.
    pub fn signed_message(&self, origin: &LogOrigin) -> Vec<u8> {
        message(origin, &self.bytes[..self.bytes.len() - SIGNATURE_SIZE])
    }

    /// Whether `key` signed this entry for the log `origin`. Entry signatures
    /// are Ed25519 checked with the cofactored equation, the same rule for
    /// one entry as for the batches of the sequencer and the auditor.
    pub fn verify(&self, origin: &LogOrigin, key: &PublicKey) -> bool {
        verify_one(key, &self.signed_message(origin), &self.signature)
    }
}

fn body_bytes(author: &PartyId, statement: &Statement) -> Vec<u8> {
    let mut e = Encoder::new();
    e.u8(ENVELOPE_V1);
    e.short_str(author.as_str());
    e.raw(&statement.encode());
    e.finish()
}

fn message(origin: &LogOrigin, body: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.raw(SIGNING_DOMAIN);
    e.u8(origin.as_str().len() as u8);
    e.raw(origin.as_str().as_bytes());
    e.raw(body);
    e.finish()
}
