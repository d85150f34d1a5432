//! Any bytes as a federation message off the wire, on either side: the first byte picks the
//! message (what a node submits to the coordinator, or what the coordinator sends a node), the
//! rest is decoded as its protobuf and converted to the domain types. What converts must convert
//! back to the same message (one round trip to settle defaults, then a fixed point). Errors are
//! expected; a panic is a finding.
#![no_main]

use fed::contribution::SignedContribution;
use fed::secure_round::{SecureMessage, SecureRoundParams, SecureTask};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use protocol::convert::{decode_metrics, decode_model, decode_standardization};
use protocol::v1;

/// Converts `message` and, where it converts, checks the round trip settles.
fn round_trip<W, D>(message: W)
where
    W: Clone + PartialEq + std::fmt::Debug + for<'a> From<&'a D>,
    D: TryFrom<W>,
{
    let Ok(domain) = D::try_from(message) else {
        return;
    };
    let once = W::from(&domain);
    let Ok(again) = D::try_from(once.clone()) else {
        panic!("a re-encoded message does not convert: {once:?}");
    };
    assert_eq!(W::from(&again), once, "conversion is not stable");
}

fn contribution(c: Option<v1::Contribution>) {
    if let Some(c) = c {
        round_trip::<v1::Contribution, SignedContribution>(c);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    match pick % 6 {
        0 => {
            let Ok(s) = v1::SecureSubmission::decode(bytes) else {
                return;
            };
            if let Some(m) = s.message {
                round_trip::<v1::secure_submission::Message, SecureMessage>(m);
            }
            contribution(s.contribution);
        }
        1 => {
            let Ok(u) = v1::ModelUpdate::decode(bytes) else {
                return;
            };
            let _ = decode_model(u.weights);
            contribution(u.contribution);
        }
        2 => {
            let Ok(e) = v1::Evaluation::decode(bytes) else {
                return;
            };
            let _ = decode_metrics(e.test_metrics, "test");
        }
        3 => {
            let Ok(r) = v1::SecureStepRequest::decode(bytes) else {
                return;
            };
            if let Some(task) = r.task {
                round_trip::<v1::secure_step_request::Task, SecureTask>(task);
            }
        }
        4 => {
            let Ok(t) = v1::TrainRequest::decode(bytes) else {
                return;
            };
            let _ = decode_model(t.global_model);
            if let Some(s) = t.standardization {
                let _ = decode_standardization(s);
            }
            if let Some(p) = t.secure {
                round_trip::<v1::SecureRoundParams, SecureRoundParams>(p);
            }
        }
        _ => {
            let Ok(e) = v1::EvaluateRequest::decode(bytes) else {
                return;
            };
            let _ = decode_model(e.model);
            if let Some(s) = e.standardization {
                let _ = decode_standardization(s);
            }
        }
    }
});
