//! Composition: RDP adds up per order over every mechanism applied, and (ε, δ) is read off the
//! total.

use serde::{Deserialize, Serialize};

use super::conversion::{EpsilonBound, epsilon_from_rdp};
use super::{AccountantError, SampledGaussian};

/// The RDP orders of Google's dp-accounting 0.6.0 (`RdpAccountant()` defaults):
/// 1.1, 1.2, …, 10.9, then 11, 12, …, 63, then 128, 256, 512, 1024.
pub fn default_orders() -> Vec<f64> {
    (1..100)
        .map(|tenths| 1.0 + f64::from(tenths) / 10.0)
        .chain((11..64).map(f64::from))
        .chain([128.0, 256.0, 512.0, 1024.0])
        .collect()
}

/// An RDP accountant: the record of every mechanism composed so far and the RDP they add up to
/// at each order. Serialises as its orders and its record (the RDP is recomputed on loading),
/// so a node can persist it per plan and the ledger can show what was spent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AccountantRecord", into = "AccountantRecord")]
pub struct RdpAccountant {
    orders: Vec<f64>,
    events: Vec<SampledGaussian>,
    rdp: Vec<f64>,
}

/// The serialised form of an [`RdpAccountant`].
#[derive(Clone, Debug, Serialize, Deserialize)]
struct AccountantRecord {
    orders: Vec<f64>,
    events: Vec<SampledGaussian>,
}

impl Default for RdpAccountant {
    fn default() -> Self {
        RdpAccountant {
            rdp: vec![0.0; default_orders().len()],
            orders: default_orders(),
            events: Vec::new(),
        }
    }
}

impl RdpAccountant {
    /// An empty accountant over [`default_orders`].
    pub fn new() -> RdpAccountant {
        RdpAccountant::default()
    }

    /// An empty accountant over `orders`.
    ///
    /// # Errors
    /// [`AccountantError::InvalidParameter`] when there are no orders or one is not a finite
    /// number above 1.
    pub fn with_orders(orders: Vec<f64>) -> Result<RdpAccountant, AccountantError> {
        if orders.is_empty() {
            return Err(AccountantError::InvalidParameter {
                name: "number of orders",
                value: 0.0,
                expected: "at least one order",
            });
        }
        if let Some(&bad) = orders
            .iter()
            .find(|&&alpha| !(alpha.is_finite() && alpha > 1.0))
        {
            return Err(AccountantError::InvalidParameter {
                name: "RDP order",
                value: bad,
                expected: "a finite number above 1",
            });
        }
        Ok(RdpAccountant {
            rdp: vec![0.0; orders.len()],
            orders,
            events: Vec::new(),
        })
    }

    /// The orders.
    pub fn orders(&self) -> &[f64] {
        &self.orders
    }

    /// The total RDP at each order.
    pub fn rdp(&self) -> &[f64] {
        &self.rdp
    }

    /// The mechanisms composed so far (consecutive identical ones merged).
    pub fn events(&self) -> &[SampledGaussian] {
        &self.events
    }

    /// Adds `event` to the total.
    ///
    /// # Errors
    /// [`AccountantError::InvalidParameter`] for invalid event parameters.
    pub fn compose(&mut self, event: &SampledGaussian) -> Result<(), AccountantError> {
        event.validate()?;
        for (total, &alpha) in self.rdp.iter_mut().zip(&self.orders) {
            *total += event.rdp(alpha);
        }
        match self.events.last_mut() {
            Some(last)
                if last.sample_rate == event.sample_rate
                    && last.noise_multiplier == event.noise_multiplier =>
            {
                last.steps = last.steps.saturating_add(event.steps);
            }
            _ => self.events.push(*event),
        }
        Ok(())
    }

    /// The smallest ε at `delta` for everything composed so far.
    ///
    /// # Errors
    /// [`AccountantError::InvalidParameter`] for δ outside (0, 1).
    pub fn epsilon(&self, delta: f64) -> Result<EpsilonBound, AccountantError> {
        epsilon_from_rdp(&self.orders, &self.rdp, delta)
    }
}

impl TryFrom<AccountantRecord> for RdpAccountant {
    type Error = AccountantError;

    fn try_from(record: AccountantRecord) -> Result<Self, Self::Error> {
        let mut accountant = RdpAccountant::with_orders(record.orders)?;
        for event in &record.events {
            accountant.compose(event)?;
        }
        Ok(accountant)
    }
}

impl From<RdpAccountant> for AccountantRecord {
    fn from(accountant: RdpAccountant) -> Self {
        AccountantRecord {
            orders: accountant.orders,
            events: accountant.events,
        }
    }
}
