//! The federation's ledger: a public, append-only, tamper-evident log of
//! every operation of the training algorithm, witnessed by the hospitals.
//!
//! * **Merkle tree** ([`merkle`]): RFC 9162 (RFC 6962 hashing), inclusion and
//!   consistency proofs, and the subtree proofs of the Merkle Tree
//!   Certificates draft; verification follows the edge-case policy of
//!   `transparency-dev/merkle`.
//! * **Storage** ([`tiles`]): C2SP tlog-tiles, i.e. hash tiles
//!   `tile/<L>/<N>[.p/<W>]`, entry bundles `tile/entries/<N>[.p/<W>]` and the
//!   `checkpoint`, as plain files: a mirror is a file copy.
//! * **Checkpoints** ([`checkpoint`], [`note`]): C2SP signed notes signed by
//!   the log's Ed25519 key; witnesses add C2SP `cosignature/v1` lines.
//! * **Entries** ([`entry`]): versioned statements (Genesis, PolicyUpdate,
//!   KeyEnrolled/Rotated/Revoked, PlanRegistered, PlanApproved,
//!   DatasetPrepared, RoundOpened, Contribution, RoundAggregated,
//!   ModelReleased, Objection), in a canonical
//!   binary encoding, signed by their author over the log's origin.
//! * **Sequencer** ([`writer::LogWriter`]), **witness** ([`witness::Witness`]),
//!   **fork evidence** ([`fork::ForkEvidence`]), **receipts**
//!   ([`receipt::Receipt`]) and the offline **auditor** ([`audit::verify_log`]).
//!
//! # Architecture invariant
//!
//! The ledger never sees patient data: its API takes hashes, counts (sample
//! counts bucketed; exclusion counts, never who), metrics, codes from fixed
//! tables and party identifiers (`[a-z0-9-]{1,63}`), signed; the entry
//! schema has no field that could hold free text. It does no networking: a
//! witness reads the log through [`tiles::LogSource`], which a transport can
//! implement. The entry format does not depend on who sequences the log
//! (signatures cover the log's origin, not positions).
//!
//! # Canonical encoding
//!
//! Big-endian fixed-width integers; hashes as 32 raw bytes; identifiers as a
//! length byte and ASCII; lists as a `u16` count then items; sets sorted
//! without repetition; numbers as IEEE 754 bits (finite, no negative zero);
//! epsilon in millionths; weights in parts per billion. Decoding accepts only
//! canonical bytes. `docs/ledger.md` has the field tables.
//!
//! # Example
//!
//! ```
//! use ledger::audit::verify_log;
//! use ledger::entry::Epsilon;
//! use ledger::synthetic::Federation;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("ledger-doc-{}", std::process::id()));
//! let federation = Federation::new(3, 2)?; // 3 hospitals, 2 cosignatures needed
//!
//! // The coordinator starts the log and records a plan and one round.
//! let mut log = federation.create_log(&dir.join("log"))?;
//! let plan = federation.plan("heart", 1, Epsilon::from_micro(2_000_000))?;
//! log.append_batch(&federation.plan_entries(&plan)?)?;
//! log.append_batch(&federation.round_entries(&plan, 1, Epsilon::from_micro(500_000))?)?;
//!
//! // The hospitals' witnesses check and cosign the checkpoint; it is published.
//! let mut witnesses = federation.witnesses(&dir.join("witnesses"))?;
//! let checkpoint = federation.publish(&mut log, &mut witnesses, 1_700_000_000)?;
//! assert_eq!(checkpoint.checkpoint().size, 1 + 4 + 5);
//!
//! // Anyone can audit the directory offline and get a receipt for an entry.
//! let report = verify_log(&federation.policy()?, &dir.join("log"));
//! assert!(report.is_clean(), "{report}");
//! let receipt = log.receipt(5)?;
//! let entry = receipt.verify(&federation.origin, &federation.policy()?.log_key)?;
//! assert_eq!(entry.statement().kind_name(), "RoundOpened");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

pub mod audit;
pub mod bench;
pub mod checkpoint;
pub mod entry;
pub mod fork;
pub mod hash;
pub mod merkle;
pub mod note;
mod parallel;
pub mod policy;
pub mod proof_file;
pub mod receipt;
pub mod registry;
mod signatures;
pub mod synthetic;
pub mod tiles;
pub mod witness;
pub mod writer;
