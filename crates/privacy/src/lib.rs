//! Privacy for federated learning: secure aggregation and differential privacy.
//!
//! - [`secagg`]: SecAgg+ secure aggregation, so the coordinator sees only the sum of the
//!   hospitals' (quantised) updates, with recovery from dropouts.
//! - [`dp`]: differential privacy: DP-FedAvg (clipping, distributed Gaussian noise, adaptive
//!   clipping) and DP-SGD helpers over plain f32 slices.
//! - [`accountant`]: the RDP accountant that turns noise, sampling and steps into (ε, δ), and
//!   the budget a node enforces.
//!
//! ```
//! use std::collections::BTreeMap;
//! use privacy::secagg::{Quantizer, RoundConfig, Topology, run_round};
//!
//! let config = RoundConfig {
//!     round_id: 1,
//!     clients: vec![0, 1, 2],
//!     threshold: 2,
//!     topology: Topology::Complete,
//!     vector_len: 2,
//! };
//! let quantizer = Quantizer::new(1.0, 3)?;
//! let updates = [[0.5f32, -0.25], [0.125, 0.0], [-0.5, 1.0]];
//! let words = updates
//!     .iter()
//!     .map(|u| quantizer.quantize(u).map(|q| q.words))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let outcome = run_round(&config, &words, &BTreeMap::new(), &mut rand::rng())?;
//! let sum = quantizer.dequantize_sum(&outcome.sum);
//! assert!((sum[0] - 0.125).abs() < 1e-6 && (sum[1] - 0.75).abs() < 1e-6);
//! # Ok::<(), privacy::secagg::SecAggError>(())
//! ```

pub mod accountant;
pub mod dp;
pub mod secagg;
