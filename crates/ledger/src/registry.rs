//! Who may sign what, as of a position in the log: the parties' roles and
//! current keys, and the witness policy. It starts from the genesis entry and
//! follows the key and policy entries; the sequencer and the auditor share it.

use std::collections::HashMap;

use crate::entry::{
    Genesis, LogOrigin, PartyId, PublicKey, Role, SignedEntry, Statement, WitnessPolicy,
};

/// Why an entry's author may not sign it, or why a key or policy entry cannot
/// take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The author was never enrolled.
    #[error("author {0} is not enrolled")]
    UnknownAuthor(PartyId),
    /// The author's key was revoked.
    #[error("author {0}'s key is revoked")]
    Revoked(PartyId),
    /// The author's role may not make this statement.
    #[error("{author} ({role}) may not sign a {kind}")]
    RoleNotAllowed {
        /// The author.
        author: PartyId,
        /// Its role.
        role: Role,
        /// The statement kind.
        kind: &'static str,
    },
    /// Only the party itself may rotate its key.
    #[error("{author} may not rotate the key of {party}")]
    RotationByOther {
        /// The author.
        author: PartyId,
        /// The party whose key it rotated.
        party: PartyId,
    },
    /// Genesis appears after the first entry.
    #[error("a Genesis entry may only be the first entry")]
    LateGenesis,
    /// The first entry is not a Genesis.
    #[error("the first entry must be a Genesis, not a {0}")]
    MissingGenesis(&'static str),
    /// The genesis author is not a coordinator of the genesis it signs.
    #[error("the Genesis must be signed by one of its coordinators, not {0}")]
    GenesisAuthor(PartyId),
    /// The signature does not verify with the author's current key.
    #[error("signature of {0} does not verify")]
    BadSignature(PartyId),
    /// Enrolling a party whose key is active.
    #[error("{0} is already enrolled")]
    AlreadyEnrolled(PartyId),
    /// Rotating or revoking the key of a party that has none.
    #[error("{0} has no active key")]
    NoActiveKey(PartyId),
    /// A witness that is not an enrolled hospital.
    #[error("witness {0} is not an enrolled hospital")]
    WitnessNotHospital(PartyId),
}

#[derive(Clone, Debug)]
struct PartyState {
    role: Role,
    key: Option<PublicKey>,
}

/// The key registry at one position of the log.
#[derive(Clone, Debug)]
pub struct Registry {
    parties: HashMap<PartyId, PartyState>,
    witnesses: WitnessPolicy,
}

impl Registry {
    /// The registry a genesis statement sets up.
    pub fn from_genesis(genesis: &Genesis) -> Self {
        let parties = genesis
            .parties()
            .iter()
            .map(|p| {
                (
                    p.party.clone(),
                    PartyState {
                        role: p.role,
                        key: Some(p.key),
                    },
                )
            })
            .collect();
        Self {
            parties,
            witnesses: genesis.witnesses.clone(),
        }
    }

    /// Check the first entry of a log and build the registry from it: it must
    /// be a Genesis signed by one of the coordinators it names.
    pub fn from_first_entry(entry: &SignedEntry, origin: &LogOrigin) -> Result<Self, AuthError> {
        let Statement::Genesis(genesis) = entry.statement() else {
            return Err(AuthError::MissingGenesis(entry.statement().kind_name()));
        };
        let registry = Self::from_genesis(genesis);
        match registry.parties.get(entry.author()) {
            Some(PartyState {
                role: Role::Coordinator,
                key: Some(key),
            }) => {
                if entry.verify(origin, key) {
                    Ok(registry)
                } else {
                    Err(AuthError::BadSignature(entry.author().clone()))
                }
            }
            _ => Err(AuthError::GenesisAuthor(entry.author().clone())),
        }
    }

    /// A party's role, if enrolled.
    pub fn role(&self, party: &PartyId) -> Option<Role> {
        self.parties.get(party).map(|p| p.role)
    }

    /// A party's active key.
    pub fn key(&self, party: &PartyId) -> Option<&PublicKey> {
        self.parties.get(party).and_then(|p| p.key.as_ref())
    }

    /// The witness policy in force.
    pub fn witness_policy(&self) -> &WitnessPolicy {
        &self.witnesses
    }

    /// The key that must have signed `entry` (a non-first entry), if its
    /// author may make its statement. The signature itself is not checked.
    pub fn signer_key(&self, entry: &SignedEntry) -> Result<PublicKey, AuthError> {
        let author = entry.author();
        let state = self
            .parties
            .get(author)
            .ok_or_else(|| AuthError::UnknownAuthor(author.clone()))?;
        let key = state
            .key
            .ok_or_else(|| AuthError::Revoked(author.clone()))?;
        let statement = entry.statement();
        let allowed = match statement {
            Statement::Genesis(_) => return Err(AuthError::LateGenesis),
            Statement::KeyRotated(r) => {
                if &r.party != author {
                    return Err(AuthError::RotationByOther {
                        author: author.clone(),
                        party: r.party.clone(),
                    });
                }
                true
            }
            Statement::KeyRevoked(r) if &r.party == author => true,
            _ => statement.authorised_roles().contains(&state.role),
        };
        if !allowed {
            return Err(AuthError::RoleNotAllowed {
                author: author.clone(),
                role: state.role,
                kind: statement.kind_name(),
            });
        }
        Ok(key)
    }

    /// Check a non-first entry completely: authorisation and signature.
    pub fn authorise(&self, entry: &SignedEntry, origin: &LogOrigin) -> Result<(), AuthError> {
        let key = self.signer_key(entry)?;
        if entry.verify(origin, &key) {
            Ok(())
        } else {
            Err(AuthError::BadSignature(entry.author().clone()))
        }
    }

    /// Apply the effect of an accepted statement (key and policy changes;
    /// other statements leave the registry unchanged). On error nothing
    /// changes.
    pub fn apply(&mut self, statement: &Statement) -> Result<(), AuthError> {
        match statement {
            Statement::KeyEnrolled(e) => {
                let party = &e.enrolled.party;
                if self.key(party).is_some() {
                    return Err(AuthError::AlreadyEnrolled(party.clone()));
                }
                self.parties.insert(
                    party.clone(),
                    PartyState {
                        role: e.enrolled.role,
                        key: Some(e.enrolled.key),
                    },
                );
            }
            Statement::KeyRotated(r) => self.active_mut(&r.party)?.key = Some(r.new_key),
            Statement::KeyRevoked(r) => self.active_mut(&r.party)?.key = None,
            Statement::PolicyUpdate(p) => {
                for w in p.witnesses.witnesses() {
                    if self.role(&w.party) != Some(Role::Hospital) || self.key(&w.party).is_none() {
                        return Err(AuthError::WitnessNotHospital(w.party.clone()));
                    }
                }
                self.witnesses = p.witnesses.clone();
            }
            _ => {}
        }
        Ok(())
    }

    fn active_mut(&mut self, party: &PartyId) -> Result<&mut PartyState, AuthError> {
        self.parties
            .get_mut(party)
            .filter(|p| p.key.is_some())
            .ok_or_else(|| AuthError::NoActiveKey(party.clone()))
    }
}
