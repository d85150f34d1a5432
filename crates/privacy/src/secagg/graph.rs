//! The share/mask graph of a round: which clients hold shares of which, drawn from the
//! [`Topology`](super::Topology).

use std::collections::BTreeMap;

use super::ClientId;
use super::config::{RoundConfig, Topology};
use super::prg::{Purpose, keystream, uniform_below};

/// Clients on a ring; two clients are adjacent when their ring distance is at most `reach`.
#[derive(Clone, Debug)]
pub(crate) struct Graph {
    position: BTreeMap<ClientId, usize>,
    reach: usize,
}

impl Graph {
    /// Builds the graph of a validated configuration.
    pub(crate) fn new(config: &RoundConfig) -> Graph {
        let mut ring = config.clients.clone();
        let reach = match &config.topology {
            Topology::Complete => ring.len(),
            Topology::Harary { num_shares, seed } => {
                // Fisher–Yates, from the last position down, indices drawn from the keystream.
                let mut stream = keystream(seed, Purpose::GraphShuffle);
                for i in (1..ring.len()).rev() {
                    let j = uniform_below(&mut stream, i as u64 + 1);
                    ring.swap(i, j as usize);
                }
                (num_shares - 1) / 2
            }
        };
        let position = ring.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        Graph { position, reach }
    }

    /// Whether `id` is one of the round's clients.
    pub(crate) fn contains(&self, id: ClientId) -> bool {
        self.position.contains_key(&id)
    }

    /// Whether `holder` holds shares of `owner` (symmetric; every client holds its own).
    pub(crate) fn adjacent(&self, holder: ClientId, owner: ClientId) -> bool {
        match (self.position.get(&holder), self.position.get(&owner)) {
            (Some(&a), Some(&b)) => {
                let distance = a.abs_diff(b);
                distance.min(self.position.len() - distance) <= self.reach
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holders(graph: &Graph, owner: ClientId) -> Vec<ClientId> {
        (0..100)
            .filter(|&holder| graph.adjacent(holder, owner))
            .collect()
    }

    fn config(clients: u32, topology: Topology) -> RoundConfig {
        RoundConfig {
            round_id: 1,
            clients: (0..clients).collect(),
            threshold: 2,
            topology,
            vector_len: 1,
        }
    }

    #[test]
    fn complete_graph_makes_everyone_a_holder() {
        let graph = Graph::new(&config(5, Topology::Complete));
        for owner in 0..5 {
            assert_eq!(holders(&graph, owner), vec![0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn harary_graph_is_regular_and_symmetric() {
        let graph = Graph::new(&config(
            11,
            Topology::Harary {
                num_shares: 5,
                seed: [4; 32],
            },
        ));
        for owner in 0..11 {
            let holders = holders(&graph, owner);
            assert_eq!(holders.len(), 5);
            assert!(holders.contains(&owner));
            for holder in holders {
                assert!(graph.adjacent(owner, holder));
            }
        }
    }

    #[test]
    fn harary_ring_order_depends_on_the_seed() {
        let a = Graph::new(&config(
            20,
            Topology::Harary {
                num_shares: 3,
                seed: [1; 32],
            },
        ));
        let b = Graph::new(&config(
            20,
            Topology::Harary {
                num_shares: 3,
                seed: [2; 32],
            },
        ));
        assert!((0..20).any(|owner| holders(&a, owner) != holders(&b, owner)));
    }

    #[test]
    fn strangers_are_not_adjacent() {
        let graph = Graph::new(&config(3, Topology::Complete));
        assert!(!graph.adjacent(0, 99));
        assert!(!graph.contains(99));
    }
}
