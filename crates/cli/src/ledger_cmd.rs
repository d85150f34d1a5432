//! `cohort ledger`: the auditor's and outsiders' tools for the federation's
//! transparency log (all offline): verify a log directory, hand out inclusion
//! receipts, check a proof file, and benchmark the log.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use ledger::checkpoint::SignedCheckpoint;
use ledger::policy::Policy;
use ledger::proof_file::ProofFile;
use ledger::receipt::Receipt;
use ledger::tiles::{LogDir, LogSource};
use serde_json::json;

/// Ledger commands.
#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Audit a log directory against the federation policy: signatures with
    /// the key registry as of each entry, tiles against the checkpoint root,
    /// the cosignature quorum, rounds, privacy budgets, aggregates and
    /// releases. Prints every violation; exits 0 when there is none, 1 otherwise.
    Verify {
        /// The federation policy (origin, log key, parties, witnesses, quorum).
        #[arg(long)]
        policy: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The log directory (checkpoint + tile/).
        log_dir: PathBuf,
    },
    /// Print the inclusion receipt of an entry (JSON: leafIdx, treeSize,
    /// root, leafHash, proof, the signed checkpoint and the entry).
    Prove {
        /// The federation policy (to check the checkpoint's signature).
        #[arg(long)]
        policy: PathBuf,
        /// The log directory.
        #[arg(long)]
        log: PathBuf,
        /// Index of the entry (0-based).
        #[arg(long)]
        index: u64,
        /// Write the receipt here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a proof given as JSON in the transparency-dev test-vector format
    /// (inclusion, consistency, subtree inclusion or subtree consistency; a
    /// receipt is an inclusion proof). Exits 0 when it holds, 1 when not.
    CheckProof {
        /// The JSON file.
        file: PathBuf,
        /// Also check a receipt's checkpoint signature and entry against
        /// this policy.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Benchmarks of the log (one `BENCH {json}` line each).
    #[command(subcommand)]
    Bench(LedgerBench),
}

/// Ledger benchmarks.
#[derive(Subcommand)]
pub enum LedgerBench {
    /// Entries signed by their authors and appended (signatures checked,
    /// tiles written), per second.
    Appends {
        /// Entries to append.
        #[arg(long, default_value_t = 200_000)]
        entries: u64,
        /// Scratch directory (a temporary one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Full audit of a log of N entries (built first, not timed).
    Verify {
        /// Entries in the log.
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Scratch directory (a temporary one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Inclusion and consistency proof sizes for several tree sizes.
    Proofs,
}

/// Run a ledger command; returns the process exit code.
pub fn run(command: LedgerCommand) -> anyhow::Result<i32> {
    match command {
        LedgerCommand::Verify {
            policy,
            json,
            log_dir,
        } => {
            let policy = load_policy(&policy)?;
            let report = ledger::audit::verify_log(&policy, &log_dir);
            if json {
                let violations: Vec<_> = report
                    .violations
                    .iter()
                    .map(|v| json!({"index": v.index, "kind": format!("{:?}", v.kind), "message": v.message}))
                    .collect();
                let out = json!({
                    "treeSize": report.tree_size,
                    "root": report.root.map(|r| r.to_base64()),
                    "entriesChecked": report.entries_checked,
                    "cosignatures": report.cosignatures,
                    "quorum": report.quorum,
                    "violations": violations,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{report}");
            }
            Ok(if report.is_clean() { 0 } else { 1 })
        }
        LedgerCommand::Prove {
            policy,
            log,
            index,
            out,
        } => {
            let policy = load_policy(&policy)?;
            let dir = LogDir::new(&log);
            let bytes = dir
                .read_checkpoint()
                .with_context(|| format!("reading the checkpoint of {}", log.display()))?;
            let checkpoint = SignedCheckpoint::open(&bytes, &policy.origin, &policy.log_key)
                .context("the log's checkpoint does not verify against the policy")?;
            let receipt = Receipt::build(&dir, &checkpoint, index)
                .with_context(|| format!("building the receipt of entry {index}"))?;
            let json = receipt.to_json();
            match out {
                Some(path) => std::fs::write(&path, json + "\n")
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{json}"),
            }
            Ok(0)
        }
        LedgerCommand::CheckProof { file, policy } => Ok(check_proof(&file, policy.as_deref())),
        LedgerCommand::Bench(bench) => {
            run_bench(bench)?;
            Ok(0)
        }
    }
}

fn load_policy(path: &Path) -> anyhow::Result<Policy> {
    Policy::load(path).with_context(|| format!("loading the policy {}", path.display()))
}

/// 0 when the proof in `file` holds, 1 otherwise (unreadable files included).
fn check_proof(file: &Path, policy: Option<&Path>) -> i32 {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("invalid: cannot read {}: {e}", file.display());
            return 1;
        }
    };
    let proof = match ProofFile::parse(&text) {
        Ok(proof) => proof,
        Err(e) => {
            eprintln!("invalid: {e}");
            return 1;
        }
    };
    if let Err(e) = proof.verify() {
        eprintln!("invalid {} proof: {e}", proof.kind());
        return 1;
    }
    if let Some(policy) = policy {
        let checked = load_policy(policy).and_then(|policy| {
            let receipt = Receipt::from_json(&text)?;
            let entry = receipt.verify(&policy.origin, &policy.log_key)?;
            Ok(entry)
        });
        match checked {
            Ok(entry) => println!(
                "entry {} is a {} by {}",
                proof_index(&proof),
                entry.statement().kind_name(),
                entry.author()
            ),
            Err(e) => {
                eprintln!("invalid receipt: {e:#}");
                return 1;
            }
        }
    }
    println!("valid {} proof", proof.kind());
    0
}

fn proof_index(proof: &ProofFile) -> u64 {
    match proof {
        ProofFile::Inclusion { leaf_index, .. }
        | ProofFile::SubtreeInclusion { leaf_index, .. } => *leaf_index,
        _ => 0,
    }
}

fn run_bench(bench: LedgerBench) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let dir_or_scratch = |dir: Option<PathBuf>| dir.unwrap_or_else(|| scratch.path().to_path_buf());
    match bench {
        LedgerBench::Appends { entries, dir } => {
            let stats = ledger::bench::appends(&dir_or_scratch(dir).join("appends"), entries)?;
            let line = json!({
                "bench": "ledger-appends",
                "entries": stats.entries,
                "seconds": stats.seconds,
                "per_second": stats.per_second,
                "entry_bytes": stats.entry_bytes,
            });
            println!("BENCH {line}");
        }
        LedgerBench::Verify { entries, dir } => {
            let stats = ledger::bench::verify_log(&dir_or_scratch(dir).join("verify"), entries)?;
            let line = json!({
                "bench": "ledger-verify",
                "entries": stats.entries,
                "build_seconds": stats.build_seconds,
                "verify_seconds": stats.verify_seconds,
                "violations": stats.violations,
            });
            println!("BENCH {line}");
        }
        LedgerBench::Proofs => {
            let sizes = [1_000, 1_000_000, 1_000_000_000, 1 << 40];
            for p in ledger::bench::proof_sizes(&sizes) {
                let line = json!({
                    "bench": "ledger-proof-size",
                    "tree_size": p.tree_size,
                    "inclusion_hashes": p.inclusion_hashes,
                    "inclusion_bytes": p.inclusion_bytes,
                    "consistency_hashes": p.consistency_hashes,
                });
                println!("BENCH {line}");
            }
        }
    }
    Ok(())
}
