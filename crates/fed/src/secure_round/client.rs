//! The node's side of a secure round.

use privacy::secagg::{ClientId, Quantizer, SecAggClient};
use rand::CryptoRng;

use super::{SecureMessage, SecureRoundError, SecureRoundParams, SecureTask};

/// One node's state machine for one secure round: it answers each [`SecureTask`] with one
/// [`SecureMessage`]. Its secrets (key pairs, self-mask seed, shares held) live only here and
/// are never sent in the clear; a task that is malformed, for another round or party, or out
/// of order is refused with an error and changes nothing.
pub struct SecureRoundClient {
    params: SecureRoundParams,
    party: String,
    id: ClientId,
    quantizer: Quantizer,
    inner: Option<SecAggClient>,
}

impl std::fmt::Debug for SecureRoundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureRoundClient")
            .field("round_id", &self.params.round_id)
            .field("party", &self.party)
            .field("id", &self.id)
            .field("advertised", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

impl SecureRoundClient {
    /// The client of `party` in the round `params`.
    ///
    /// # Errors
    /// [`SecureRoundError::InvalidParams`] for invalid parameters,
    /// [`SecureRoundError::UnknownParty`] when `party` is not a participant.
    pub fn new(
        params: SecureRoundParams,
        party: &str,
    ) -> Result<SecureRoundClient, SecureRoundError> {
        params.validate()?;
        let id = params
            .client_id(party)
            .ok_or_else(|| SecureRoundError::UnknownParty {
                party: party.to_owned(),
            })?;
        Ok(SecureRoundClient {
            quantizer: params.quantizer()?,
            params,
            party: party.to_owned(),
            id,
            inner: None,
        })
    }

    /// The round's parameters.
    pub fn params(&self) -> &SecureRoundParams {
        &self.params
    }

    /// This node's protocol id.
    pub fn client_id(&self) -> ClientId {
        self.id
    }

    /// This node's party name.
    pub fn party(&self) -> &str {
        &self.party
    }

    fn state_error(&self, reason: impl Into<String>) -> SecureRoundError {
        SecureRoundError::ClientState {
            party: self.party.clone(),
            reason: reason.into(),
        }
    }

    /// Step 0: draws this round's key pairs and self-mask seed from `rng` and returns the
    /// public keys.
    ///
    /// # Errors
    /// [`SecureRoundError::ClientState`] when the keys were already advertised (a second set of
    /// keys would break the round).
    pub fn advertise<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<SecureMessage, SecureRoundError> {
        if self.inner.is_some() {
            return Err(self.state_error("keys were already advertised in this round"));
        }
        let mut inner = SecAggClient::new(self.params.round_config(), self.id, rng)?;
        let keys = inner.advertise_keys()?;
        self.inner = Some(inner);
        Ok(SecureMessage::AdvertiseKeys(keys))
    }

    /// Answers `task`. `update` is this node's input (for weighted means,
    /// [`super::encode_update`]); it is used only by [`SecureTask::MaskInput`], where it is
    /// quantised and masked. `rng` is used by [`SecureTask::AdvertiseKeys`] and
    /// [`SecureTask::ShareKeys`].
    ///
    /// # Errors
    /// [`SecureRoundError::ClientState`] for a task out of order or with other parameters;
    /// for [`SecureTask::MaskInput`], [`SecureRoundError::WrongLength`],
    /// [`SecureRoundError::NonFinite`] or [`SecureRoundError::OutOfRange`] when `update` does
    /// not fit the parameters (values outside [−range, range] are refused rather than
    /// clipped); [`SecureRoundError::Protocol`] when the protocol refuses the task (another
    /// round or recipient, tampered shares, too few holders, an unmasking request that lists
    /// this node as dropped or that comes twice, ...).
    pub fn respond<R: CryptoRng + ?Sized>(
        &mut self,
        task: &SecureTask,
        update: &[f32],
        rng: &mut R,
    ) -> Result<SecureMessage, SecureRoundError> {
        match task {
            SecureTask::AdvertiseKeys { params } => {
                if *params != self.params {
                    return Err(self.state_error("the task's parameters differ from this round's"));
                }
                self.advertise(rng)
            }
            SecureTask::ShareKeys { directory } => {
                let inner = self.advertised(task)?;
                Ok(SecureMessage::ShareKeys(inner.share_keys(directory, rng)?))
            }
            SecureTask::MaskInput { delivery } => {
                let words = quantize_in_range(&self.quantizer, self.params.vector_len, update)?;
                let inner = self.advertised(task)?;
                Ok(SecureMessage::MaskedInput(
                    inner.mask_input(delivery, &words)?,
                ))
            }
            SecureTask::Unmask { request } => {
                let inner = self.advertised(task)?;
                Ok(SecureMessage::Unmasking(inner.unmask(request)?))
            }
        }
    }

    /// The protocol client, once the keys were advertised.
    fn advertised(&mut self, task: &SecureTask) -> Result<&mut SecAggClient, SecureRoundError> {
        match self.inner.as_mut() {
            Some(inner) => Ok(inner),
            None => Err(SecureRoundError::ClientState {
                party: self.party.clone(),
                reason: format!("task '{}' before the keys were advertised", task.step()),
            }),
        }
    }
}

/// Quantises `values`, refusing the wrong length, non-finite values and values the quantiser
/// would clip.
fn quantize_in_range(
    quantizer: &Quantizer,
    expected_len: usize,
    values: &[f32],
) -> Result<Vec<u32>, SecureRoundError> {
    if values.len() != expected_len {
        return Err(SecureRoundError::WrongLength {
            what: "update to mask",
            expected: expected_len,
            got: values.len(),
        });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(SecureRoundError::NonFinite {
            what: "update to mask",
            index,
        });
    }
    let range = quantizer.range();
    if let Some((index, &value)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| f64::from(v.abs()) > range)
    {
        return Err(SecureRoundError::OutOfRange {
            index,
            value,
            range,
        });
    }
    Ok(quantizer.quantize(values)?.words)
}
