//! `cohort dp`: differential-privacy tools.

use anyhow::Context;
use clap::Subcommand;
use privacy::accountant::{RdpAccountant, SampledGaussian};

/// Differential-privacy tools.
#[derive(Subcommand)]
pub enum DpCommand {
    /// Epsilon of `steps` Poisson-subsampled Gaussian steps (DP-SGD, or DP-FedAvg rounds with
    /// client sampling), from the RDP accountant.
    Epsilon {
        /// Sampling rate q in [0, 1] (1: every record or client in every step).
        #[arg(long)]
        q: f64,
        /// Noise multiplier: noise standard deviation over the clip norm.
        #[arg(long)]
        sigma: f64,
        /// Number of steps.
        #[arg(long)]
        steps: u64,
        /// Target delta, in (0, 1).
        #[arg(long)]
        delta: f64,
    },
}

/// Runs a `cohort dp` command.
///
/// # Errors
/// When a parameter is out of its domain.
pub fn run(cmd: DpCommand) -> anyhow::Result<()> {
    match cmd {
        DpCommand::Epsilon {
            q,
            sigma,
            steps,
            delta,
        } => {
            let mut accountant = RdpAccountant::new();
            accountant
                .compose(&SampledGaussian {
                    sample_rate: q,
                    noise_multiplier: sigma,
                    steps,
                })
                .context("invalid mechanism parameters")?;
            let bound = accountant.epsilon(delta).context("invalid delta")?;
            println!("epsilon = {:.6} (delta = {delta:e})", bound.epsilon);
            match bound.order {
                Some(order) => println!("optimal RDP order = {order}"),
                None => println!("optimal RDP order = none (no finite bound at any order)"),
            }
            Ok(())
        }
    }
}
