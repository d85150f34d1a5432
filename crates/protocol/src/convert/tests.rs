//! Every typed message survives domain → protobuf bytes → domain unchanged,
//! and malformed fields are refused with the field's name.

use fed::contribution::{Contribution, SignedContribution};
use fed::secure_round::{
    SecureMessage, SecureRoundClient, SecureRoundParams, SecureRoundServer, SecureTask,
    StepOutcome, Topology,
};
use learn::Metrics;
use prost::Message;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::WireError;
use crate::v1;

/// Through the wire: protobuf bytes and back.
fn wire<M: Message + Default>(message: &M) -> M {
    M::decode(message.encode_to_vec().as_slice()).unwrap()
}

fn task_round_trip(task: &SecureTask) {
    let request = v1::SecureStepRequest {
        plan_id: "p".into(),
        round: 1,
        task: Some(task.into()),
    };
    let back = SecureTask::try_from(wire(&request).task.unwrap()).unwrap();
    assert_eq!(&back, task);
}

fn message_round_trip(message: &SecureMessage) {
    let submission = v1::SecureSubmission {
        plan_id: "p".into(),
        round: 1,
        message: Some(message.into()),
        contribution: None,
    };
    let back = SecureMessage::try_from(wire(&submission).message.unwrap()).unwrap();
    assert_eq!(&back, message);
}

/// A whole secure round of three parties, every task and message carried
/// through its protobuf form; the sum is that of the inputs.
#[test]
fn a_secure_round_survives_the_wire() {
    let names: Vec<String> = ["a", "b", "c"].iter().map(|&n| n.to_owned()).collect();
    let mut params = SecureRoundParams::new(
        7,
        names.clone(),
        2,
        Topology::Harary {
            num_shares: 3,
            seed: [9; 32],
        },
        3,
        10.0,
    )
    .unwrap();
    params.client_clip_norm = Some(0.5);
    let mut rng = StdRng::seed_from_u64(3);
    let mut server = SecureRoundServer::new(params.clone()).unwrap();
    let inputs = [[1.0f32, 2.0, 3.0], [0.5, 0.0, -1.0], [-2.0, 1.0, 0.25]];
    let mut clients = Vec::new();
    for name in &names {
        let task = server.task_for(name).unwrap();
        task_round_trip(&task);
        let SecureTask::AdvertiseKeys { params: sent } = &task else {
            panic!("first task is to advertise keys, got {task:?}");
        };
        let mut client = SecureRoundClient::new(sent.clone(), name).unwrap();
        let message = client.advertise(&mut rng).unwrap();
        message_round_trip(&message);
        server.receive(name, message).unwrap();
        clients.push(client);
    }
    let sum = loop {
        match server.close_step().unwrap() {
            StepOutcome::Finished { .. } => break server.result().cloned().unwrap(),
            StepOutcome::Advanced { .. } => {}
        }
        for (index, name) in names.iter().enumerate() {
            let Some(task) = server.task_for(name) else {
                continue;
            };
            task_round_trip(&task);
            let message = clients[index]
                .respond(&task, &inputs[index], &mut rng)
                .unwrap();
            message_round_trip(&message);
            server.receive(name, message).unwrap();
        }
    };
    for (j, value) in sum.sum.iter().enumerate() {
        let expected: f32 = inputs.iter().map(|i| i[j]).sum();
        assert!((value - expected).abs() < 1e-4, "{value} vs {expected}");
    }
}

#[test]
fn malformed_secure_fields_are_refused_by_name() {
    let keys = v1::AdvertisedKeys {
        round_id: 1,
        sender: 1,
        cipher_public_key: vec![0; 31],
        mask_public_key: vec![0; 32],
    };
    let err =
        SecureMessage::try_from(v1::secure_submission::Message::AdvertiseKeys(keys)).unwrap_err();
    assert!(
        matches!(&err, WireError::Invalid { field: "cipher_public_key", reason } if reason.contains("31 bytes")),
        "{err}"
    );

    let unknown_kind = v1::UnmaskingResponse {
        round_id: 1,
        sender: 1,
        shares: vec![v1::RevealedShare {
            owner: 2,
            kind: 7,
            share: vec![0; 48],
        }],
    };
    let err = SecureMessage::try_from(v1::secure_submission::Message::Unmasking(unknown_kind))
        .unwrap_err();
    assert!(
        matches!(
            err,
            WireError::Invalid {
                field: "revealed share kind",
                ..
            }
        ),
        "{err}"
    );

    let mut params = v1::SecureRoundParams::from(
        &SecureRoundParams::new(
            1,
            vec!["a".into(), "b".into()],
            2,
            Topology::Complete,
            3,
            1.0,
        )
        .unwrap(),
    );
    params.topology = None;
    assert_eq!(
        SecureRoundParams::try_from(params.clone()).unwrap_err(),
        WireError::Missing("secure round topology")
    );
    params.topology = Some(v1::secure_round_params::Topology::Harary(v1::HararyGraph {
        num_shares: 3,
        seed: vec![1; 5],
    }));
    assert!(matches!(
        SecureRoundParams::try_from(params.clone()).unwrap_err(),
        WireError::Invalid {
            field: "harary.seed",
            ..
        }
    ));
    params.topology = Some(v1::secure_round_params::Topology::Complete(
        v1::CompleteGraph {},
    ));
    params.range = f64::NAN;
    assert!(matches!(
        SecureRoundParams::try_from(params).unwrap_err(),
        WireError::Invalid { field: "range", .. }
    ));
}

fn signed_contribution() -> SignedContribution {
    let plan = fed::plan::TrainingPlan::heart_disease_default();
    let metrics = Metrics {
        loss: 0.5,
        accuracy: 0.75,
        samples: 12,
    };
    let contribution = Contribution {
        round: 2,
        update_sha256: "ab".repeat(32),
        num_samples: 12,
        train: metrics,
        global_test: Metrics {
            loss: 0.6,
            ..metrics
        },
        code_hash: plan.code_hash(),
        epsilon_round_micro: 10,
        epsilon_total_micro: 30,
    };
    let entry = fed::record::sign_contribution(
        &plan,
        &contribution,
        &ledger::entry::LogOrigin::new("test/log").unwrap(),
        ledger::entry::PartyId::new("hospital-a").unwrap(),
        &ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
    )
    .unwrap();
    SignedContribution {
        contribution,
        entry,
    }
}

#[test]
fn a_contribution_survives_the_wire() {
    let signed = signed_contribution();
    let message = wire(&v1::Contribution::from(&signed));
    assert_eq!(SignedContribution::try_from(message).unwrap(), signed);
}

#[test]
fn a_contribution_without_entry_or_with_bad_metrics_is_refused() {
    let signed = signed_contribution();
    let mut message = v1::Contribution::from(&signed);
    message.contribution_entry.clear();
    assert_eq!(
        SignedContribution::try_from(message).unwrap_err(),
        WireError::Missing("contribution entry")
    );
    let mut message = v1::Contribution::from(&signed);
    message.contribution_entry.truncate(10);
    assert!(matches!(
        SignedContribution::try_from(message).unwrap_err(),
        WireError::Invalid {
            field: "contribution_entry",
            ..
        }
    ));
    let mut message = v1::Contribution::from(&signed);
    message.train_metrics = Some(v1::Metrics {
        loss: f64::NAN,
        accuracy: 0.5,
        samples: 1,
    });
    assert!(matches!(
        SignedContribution::try_from(message).unwrap_err(),
        WireError::Invalid {
            field: "train_metrics",
            ..
        }
    ));
    let mut message = v1::Contribution::from(&signed);
    message.global_test_metrics = None;
    assert!(matches!(
        SignedContribution::try_from(message).unwrap_err(),
        WireError::Invalid {
            field: "global_test_metrics",
            ..
        }
    ));
}

#[test]
fn a_model_is_refused_when_its_bytes_do_not_hash_to_its_claim() {
    let weights = learn::Weights::new(vec![("w".into(), vec![2])], vec![1.0, 2.0]).unwrap();
    let mut model = super::model_message(&weights);
    assert_eq!(super::decode_model(Some(wire(&model))).unwrap(), weights);
    model.sha256 = "00".repeat(32);
    assert!(
        super::decode_model(Some(model))
            .unwrap_err()
            .contains("hash")
    );
    assert!(super::decode_model(None).is_err());
}
