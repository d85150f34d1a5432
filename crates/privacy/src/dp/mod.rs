//! Differential-privacy mechanisms: client-level DP-FedAvg with distributed noise and adaptive
//! clipping, and record-level DP-SGD helpers. The privacy they give is counted by
//! [`crate::accountant`].
//!
//! ```
//! use privacy::dp::DpFedAvg;
//!
//! let mechanism = DpFedAvg { clip_norm: 1.0, noise_multiplier: 1.0, min_contributors: 4 };
//! let mut delta = vec![3.0f32, 4.0];
//! let clipping = mechanism.privatize_delta(&mut delta, &mut rand::rng())?;
//! assert!(clipping.clipped && clipping.norm == 5.0);
//! assert_eq!(mechanism.client_noise_std(), 0.5);
//! # Ok::<(), privacy::dp::DpError>(())
//! ```

mod adaptive;
mod clip;
mod dpsgd;
mod error;
mod fedavg;
mod noise;

pub use adaptive::AdaptiveClipping;
pub use clip::{Clipping, clip_l2, l2_norm};
pub use dpsgd::{ClippedSum, clip_and_sum, noisy_mean, poisson_sample};
pub use error::DpError;
pub use fedavg::DpFedAvg;
pub use noise::add_gaussian_noise;
