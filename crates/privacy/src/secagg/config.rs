//! The parameters of one secure-aggregation round, shared by the server and every client.

use serde::{Deserialize, Serialize};

use super::{ClientId, SecAggError};

/// Largest accepted vector (words per masked input): 2^28 words, 1 GiB.
pub const MAX_VECTOR_LEN: usize = 1 << 28;

/// Who holds shares of whose secrets, and so which pairs of clients mask against each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Topology {
    /// Every client shares with, and masks against, every other (Bonawitz et al. 2017).
    Complete,
    /// SecAgg+ (Bell et al. 2020): the clients sit on a ring in a random order drawn from `seed`
    /// (chosen by the server, public); each client's secrets are held by `num_shares` clients:
    /// itself and the `(num_shares − 1) / 2` nearest on each side, and it masks only against
    /// those. `num_shares` is odd and at least 3; when it reaches the number of clients the graph
    /// is complete.
    Harary {
        /// Share holders per client, the client itself included.
        num_shares: usize,
        /// Seed of the ring order (ChaCha20 keystream, Fisher–Yates shuffle).
        seed: [u8; 32],
    },
}

/// One round's parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundConfig {
    /// Round number; every message carries it and other rounds' messages are refused.
    pub round_id: u64,
    /// The selected clients, sorted and distinct.
    pub clients: Vec<ClientId>,
    /// Shamir threshold t: shares needed to rebuild a secret, and the fewest clients the round
    /// goes on with. It must exceed half the share holders of a client (so that a server that
    /// asks twice cannot collect both seeds of one client: see [`super::SecAggClient::unmask`]).
    pub threshold: usize,
    /// Who shares with whom.
    pub topology: Topology,
    /// Length of every input vector, in Z_2^32 words.
    pub vector_len: usize,
}

impl RoundConfig {
    /// How many clients hold shares of each client's secrets (the client itself included).
    pub fn holders_per_client(&self) -> usize {
        match &self.topology {
            Topology::Complete => self.clients.len(),
            Topology::Harary { num_shares, .. } => (*num_shares).min(self.clients.len()),
        }
    }

    /// The smallest threshold that `validate` accepts: a strict majority of the holders.
    pub fn minimal_threshold(&self) -> usize {
        self.holders_per_client() / 2 + 1
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`SecAggError::InvalidConfig`] when clients are fewer than two, unsorted or repeated, the
    /// vector length is zero or above [`MAX_VECTOR_LEN`], the SecAgg+ degree is even or below 3,
    /// or the threshold is not a strict majority of the holders (or exceeds them).
    pub fn validate(&self) -> Result<(), SecAggError> {
        let invalid = |reason: String| Err(SecAggError::InvalidConfig(reason));
        if self.clients.len() < 2 {
            return invalid(format!(
                "{} clients: at least 2 are needed",
                self.clients.len()
            ));
        }
        if self.clients.windows(2).any(|pair| pair[0] >= pair[1]) {
            return invalid("client ids must be sorted and distinct".into());
        }
        if self.vector_len == 0 || self.vector_len > MAX_VECTOR_LEN {
            return invalid(format!(
                "vector length {} outside 1..={MAX_VECTOR_LEN}",
                self.vector_len
            ));
        }
        if let Topology::Harary { num_shares, .. } = self.topology
            && (num_shares < 3 || num_shares % 2 == 0)
        {
            return invalid(format!(
                "num_shares {num_shares} must be odd and at least 3"
            ));
        }
        let holders = self.holders_per_client();
        if self.threshold > holders || 2 * self.threshold <= holders {
            return invalid(format!(
                "threshold {} must be a strict majority of the {holders} share holders \
                 (between {} and {holders})",
                self.threshold,
                self.minimal_threshold()
            ));
        }
        Ok(())
    }
}
