//! Many Bundles to one database transaction, each kept or undone alone: bulk loads commit less
//! often, so each changed index page is written to the log fewer times.

use super::{Part, Store, Tx};
use crate::error::Result;

/// Resources a group holds before it commits.
pub const RESOURCES_PER_COMMIT: usize = 2_000;

/// Runs parts (e.g. transaction Bundles) one after another in shared database transactions.
///
/// Each part is a [`Part`] of the open transaction, kept or undone alone, with its references
/// checked when it ends; the transaction commits once it holds [`RESOURCES_PER_COMMIT`]
/// resources, and at [`GroupCommit::finish`]. A part is durable only once its group has
/// committed, so a caller acknowledges parts after `finish` (as an import reports at its end).
pub struct GroupCommit<'s> {
    store: &'s Store,
    tx: Option<Tx>,
    written: usize,
}

impl<'s> GroupCommit<'s> {
    /// No transaction open yet.
    pub fn new(store: &'s Store) -> Self {
        GroupCommit {
            store,
            tx: None,
            written: 0,
        }
    }

    /// The store written to.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// Begins a part (and a transaction, when none is open); write it through the `Tx`.
    pub async fn begin_part(&mut self) -> Result<(Part, &mut Tx)> {
        if self.tx.is_none() {
            self.tx = Some(self.store.begin().await?);
        }
        let tx = self.tx.as_mut().expect("a transaction was just begun");
        let part = tx.begin_part().await?;
        Ok((part, tx))
    }

    /// Ends `part` with its `outcome` (see [`Tx::end_part`]); a success counts `written`
    /// resources toward the group, which commits when it holds enough.
    pub async fn end_part<T>(
        &mut self,
        part: Part,
        outcome: Result<T>,
        written: usize,
    ) -> Result<T> {
        let Some(tx) = self.tx.as_mut() else {
            return outcome;
        };
        let ended = tx.end_part(part, outcome).await;
        if ended.is_ok() {
            self.written += written;
            if self.written >= RESOURCES_PER_COMMIT {
                self.finish().await?;
            }
        }
        ended
    }

    /// Commits the open transaction, if any: every part kept so far is durable.
    pub async fn finish(&mut self) -> Result<()> {
        self.written = 0;
        match self.tx.take() {
            Some(tx) => tx.commit().await,
            None => Ok(()),
        }
    }
}
