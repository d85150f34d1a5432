//! The statements parties sign, byte for byte (documented in docs/protocol.md).

/// The statement a node signs for a model update: it binds the update's hash to
/// the plan, the round, the claimed sample count and the code that ran.
pub fn update_statement(
    plan_id: &str,
    round: u32,
    weights_sha256: &str,
    num_samples: u64,
    code_hash: &str,
) -> Vec<u8> {
    format!(
        "cohort.fed.v1/update\nplan {plan_id}\nround {round}\nweights {weights_sha256}\nsamples {num_samples}\ncode {code_hash}\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_statement_is_the_documented_text() {
        let s = update_statement("ab", 3, "cd", 42, "ef");
        assert_eq!(
            String::from_utf8(s).unwrap(),
            "cohort.fed.v1/update\nplan ab\nround 3\nweights cd\nsamples 42\ncode ef\n"
        );
    }

    #[test]
    fn update_statement_differs_per_round() {
        assert_ne!(
            update_statement("p", 1, "w", 1, "c"),
            update_statement("p", 2, "w", 1, "c")
        );
    }
}
