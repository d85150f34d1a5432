//! Privacy accounting: an RDP accountant for the Poisson-subsampled Gaussian mechanism (the
//! mechanism of DP-SGD and of DP-FedAvg with client sampling), composition of heterogeneous
//! steps, conversion to (ε, δ), and a budget that refuses steps that would exceed it.
//!
//! Reference: q = 0.01, σ = 1.1, 10,000 steps, δ = 10^−5 gives ε = 5.63201 at order 4.7,
//! as Google's dp-accounting 0.6.0 does.
//!
//! ```
//! use privacy::accountant::{RdpAccountant, SampledGaussian};
//!
//! let mut accountant = RdpAccountant::new();
//! accountant.compose(&SampledGaussian { sample_rate: 0.01, noise_multiplier: 1.1, steps: 10_000 })?;
//! let bound = accountant.epsilon(1e-5)?;
//! assert!((bound.epsilon - 5.63201).abs() < 1e-4);
//! assert_eq!(bound.order, Some(4.7));
//! # Ok::<(), privacy::accountant::AccountantError>(())
//! ```

mod budget;
mod conversion;
mod error;
mod log_math;
mod rdp_accountant;
mod sampled_gaussian;

pub use budget::PrivacyBudget;
pub use conversion::{EpsilonBound, epsilon_from_rdp};
pub use error::AccountantError;
pub use rdp_accountant::{RdpAccountant, default_orders};
pub use sampled_gaussian::SampledGaussian;
