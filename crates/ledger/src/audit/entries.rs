//! Entry checks: decoding, the genesis, and each author's signature with the
//! key registry as of the entry's index. Registry-changing entries are
//! verified in order; all others are verified afterwards, on all cores.

use super::report::{Report, ViolationKind};
use crate::entry::{DecodeError, PublicKey, Role, SignedEntry, Statement};
use crate::policy::Policy;
use crate::registry::Registry;
use crate::signatures::verify_many;

/// Whether a statement changes who may sign what.
pub(super) fn changes_registry(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::KeyEnrolled(_)
            | Statement::KeyRotated(_)
            | Statement::KeyRevoked(_)
            | Statement::PolicyUpdate(_)
    )
}

/// Check every decoded entry's signature (`None`: unreadable, already
/// reported); returns the entries that are authentic (decoded, authorised,
/// signature valid), `None` for the others.
pub(super) fn check_signatures(
    policy: &Policy,
    decoded: Vec<Option<Result<SignedEntry, DecodeError>>>,
    report: &mut Report,
) -> Vec<Option<SignedEntry>> {
    let origin = &policy.origin;
    let mut registry = Registry::from_genesis(&policy.genesis);
    let mut out: Vec<Option<SignedEntry>> = Vec::with_capacity(decoded.len());
    let mut deferred: Vec<(usize, PublicKey)> = Vec::new();
    for (i, decoded) in decoded.into_iter().enumerate() {
        let index = i as u64;
        let Some(decoded) = decoded else {
            out.push(None);
            continue;
        };
        let entry = match decoded {
            Ok(entry) => entry,
            Err(e) => {
                report.violation(index, ViolationKind::Decode, e.to_string());
                out.push(None);
                continue;
            }
        };
        if i == 0 {
            let ok = check_genesis(policy, &registry, &entry, report);
            out.push(ok.then_some(entry));
            continue;
        }
        let key = match registry.signer_key(&entry) {
            Ok(key) => key,
            Err(e) => {
                report.violation(index, ViolationKind::Unauthorised, e.to_string());
                out.push(None);
                continue;
            }
        };
        if changes_registry(entry.statement()) {
            if !entry.verify(origin, &key) {
                report.violation(
                    index,
                    ViolationKind::Signature,
                    format!("signature of {} does not verify", entry.author()),
                );
                out.push(None);
                continue;
            }
            if let Err(e) = registry.apply(entry.statement()) {
                report.violation(index, ViolationKind::Registry, e.to_string());
            }
        } else {
            deferred.push((i, key));
        }
        out.push(Some(entry));
    }
    let valid = verify_many(deferred.len(), |k| {
        let (i, key) = &deferred[k];
        // Every deferred index holds a decoded entry.
        let entry = out[*i].as_ref().map_or((Vec::new(), [0; 64]), |e| {
            (e.signed_message(origin), *e.signature())
        });
        (*key, entry.0, entry.1)
    });
    for ((i, _), ok) in deferred.iter().zip(valid) {
        if !ok && let Some(entry) = out[*i].take() {
            report.violation(
                *i as u64,
                ViolationKind::Signature,
                format!("signature of {} does not verify", entry.author()),
            );
        }
    }
    out
}

/// The first entry must be the policy's genesis, signed by a coordinator of
/// the policy.
fn check_genesis(
    policy: &Policy,
    registry: &Registry,
    entry: &SignedEntry,
    report: &mut Report,
) -> bool {
    let Statement::Genesis(genesis) = entry.statement() else {
        report.violation(
            0,
            ViolationKind::Genesis,
            format!(
                "the first entry is a {}, not a Genesis",
                entry.statement().kind_name()
            ),
        );
        return false;
    };
    let mut ok = true;
    if genesis != &policy.genesis {
        report.violation(
            0,
            ViolationKind::Genesis,
            "the Genesis differs from the policy's parties, witnesses or quorum".into(),
        );
        ok = false;
    }
    let author = entry.author();
    match registry.key(author) {
        Some(key) if registry.role(author) == Some(Role::Coordinator) => {
            if !entry.verify(&policy.origin, key) {
                report.violation(
                    0,
                    ViolationKind::Signature,
                    format!("signature of {author} does not verify"),
                );
                ok = false;
            }
        }
        _ => {
            report.violation(
                0,
                ViolationKind::Unauthorised,
                format!("the Genesis is signed by {author}, not a coordinator of the policy"),
            );
            ok = false;
        }
    }
    ok
}
