//! The statements parties sign, byte for byte (documented in docs/protocol.md).

/// What a node's update claims, as it signs it.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateClaim<'a> {
    /// The plan.
    pub plan_id: &'a str,
    /// The round.
    pub round: u32,
    /// SHA-256 (hex) of the weights' safetensors bytes.
    pub weights_sha256: &'a str,
    /// Training records behind the update.
    pub num_samples: u64,
    /// The code hash that ran.
    pub code_hash: &'a str,
    /// Epsilon spent on this update, in millionths.
    pub epsilon_round_micro: u64,
    /// Epsilon spent on the plan so far, in millionths.
    pub epsilon_total_micro: u64,
}

/// The statement a node signs for a model update: it binds the update's hash to
/// the plan, the round, the claimed sample count, the code that ran and the
/// privacy budget spent.
pub fn update_statement(claim: &UpdateClaim<'_>) -> Vec<u8> {
    format!(
        "cohort.fed.v1/update\nplan {}\nround {}\nweights {}\nsamples {}\ncode {}\nepsilon-round-micro {}\nepsilon-total-micro {}\n",
        claim.plan_id,
        claim.round,
        claim.weights_sha256,
        claim.num_samples,
        claim.code_hash,
        claim.epsilon_round_micro,
        claim.epsilon_total_micro
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(round: u32) -> UpdateClaim<'static> {
        UpdateClaim {
            plan_id: "ab",
            round,
            weights_sha256: "cd",
            num_samples: 42,
            code_hash: "ef",
            epsilon_round_micro: 5,
            epsilon_total_micro: 7,
        }
    }

    #[test]
    fn update_statement_is_the_documented_text() {
        assert_eq!(
            String::from_utf8(update_statement(&claim(3))).unwrap(),
            "cohort.fed.v1/update\nplan ab\nround 3\nweights cd\nsamples 42\ncode ef\n\
             epsilon-round-micro 5\nepsilon-total-micro 7\n"
        );
    }

    #[test]
    fn update_statement_differs_per_round() {
        assert_ne!(update_statement(&claim(1)), update_statement(&claim(2)));
    }
}
