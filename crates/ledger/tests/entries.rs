//! Entries: canonical encoding, signatures bound to their log, and a schema
//! that admits no patient data.

mod common;

use ledger::entry::*;
use ledger::hash::Hash;
use ledger::synthetic::{Federation, derived_key};
use rand::{Rng, SeedableRng};

fn party(name: &str) -> PartyId {
    PartyId::new(name).unwrap()
}

fn key(label: &str) -> PublicKey {
    derived_key(label).verifying_key().into()
}

/// One statement of every kind.
fn one_of_each() -> Vec<Statement> {
    let witnesses = WitnessPolicy::new(
        vec![
            WitnessKey {
                party: party("b-hospital"),
                key: key("wb"),
            },
            WitnessKey {
                party: party("a-hospital"),
                key: key("wa"),
            },
        ],
        2,
    )
    .unwrap();
    let h = |s: &str| Hash::of_bytes(s.as_bytes());
    vec![
        Statement::Genesis(
            Genesis::new(
                vec![PartyKey {
                    party: party("coordinator"),
                    role: Role::Coordinator,
                    key: key("c"),
                }],
                witnesses.clone(),
            )
            .unwrap(),
        ),
        Statement::PolicyUpdate(PolicyUpdate { witnesses }),
        Statement::KeyEnrolled(KeyEnrolled {
            enrolled: PartyKey {
                party: party("auditor-1"),
                role: Role::Auditor,
                key: key("au"),
            },
        }),
        Statement::KeyRotated(KeyRotated {
            party: party("a-hospital"),
            new_key: key("new"),
        }),
        Statement::KeyRevoked(KeyRevoked {
            party: party("a-hospital"),
            reason: RevocationReason::Retired,
        }),
        Statement::PlanRegistered(PlanRegistered {
            plan: h("plan"),
            code_hash: h("code"),
            hyperparameters_hash: h("hyper"),
            strategy: Strategy::TrimmedMean,
            rounds: 20,
            dp_budget: DpBudget {
                epsilon: Epsilon::from_micro(8_000_000),
                delta: Delta::new(1e-5).unwrap(),
            },
            eligible: PartySet::new(vec![party("b-hospital"), party("a-hospital")]).unwrap(),
        }),
        Statement::PlanApproved(PlanApproved {
            plan: h("plan"),
            registration: h("reg"),
        }),
        Statement::RoundOpened(RoundOpened {
            plan: h("plan"),
            round: 1,
            input_model: h("m0"),
        }),
        Statement::Contribution(Contribution {
            plan: h("plan"),
            round: 1,
            update_hash: h("u"),
            samples: SampleBucket::of(199).unwrap(),
            metrics: Metrics::new(vec![
                Metric {
                    kind: MetricKind::Auc,
                    value: Number::new(0.81).unwrap(),
                },
                Metric {
                    kind: MetricKind::Loss,
                    value: Number::new(-0.0).unwrap(),
                },
            ])
            .unwrap(),
            epsilon_round: Epsilon::from_micro(400_000),
            epsilon_total: Epsilon::from_micro(400_000),
            code_hash: h("code"),
        }),
        Statement::RoundAggregated(RoundAggregated {
            plan: h("plan"),
            round: 1,
            consumed: vec![Consumed {
                contribution: h("c1"),
                weight: Weight::from_ppb(1_000_000_000).unwrap(),
            }],
            output_model: h("m1"),
        }),
        Statement::ModelReleased(ModelReleased {
            plan: h("plan"),
            model: h("m1"),
        }),
        Statement::Objection(Objection {
            entry: h("e"),
            reason: ObjectionReason::WeightsIncorrect,
        }),
        Statement::DatasetPrepared(DatasetPrepared {
            plan: h("plan"),
            registration: h("reg"),
            records: SampleBucket::of(1_234).unwrap(),
            excluded_by_consent: 17,
            incomplete: 3,
        }),
    ]
}

#[test]
fn every_statement_kind_round_trips_through_its_canonical_bytes() {
    let statements = one_of_each();
    let mut kinds: Vec<u8> = statements.iter().map(|s| s.kind_code().0).collect();
    kinds.dedup();
    assert_eq!(kinds, (1..=13).collect::<Vec<u8>>());
    for statement in statements {
        let bytes = statement.encode();
        assert_eq!(bytes[1], 1, "version 1");
        let decoded = Statement::decode(&bytes).unwrap();
        assert_eq!(decoded, statement);
        assert_eq!(decoded.encode(), bytes);
    }
}

#[test]
fn non_canonical_bytes_are_rejected() {
    let contribution = one_of_each().remove(8).encode();
    let mut trailing = contribution.clone();
    trailing.push(0);
    assert_eq!(
        Statement::decode(&trailing),
        Err(DecodeError::TrailingBytes(1))
    );
    let mut unknown_version = contribution.clone();
    unknown_version[1] = 2;
    assert!(matches!(
        Statement::decode(&unknown_version),
        Err(DecodeError::UnknownStatement {
            kind: 9,
            version: 2
        })
    ));

    // The eligible set of a plan, written unsorted by hand.
    let plan = one_of_each().remove(5).encode();
    let a = plan.windows(10).position(|w| w == b"a-hospital").unwrap();
    let b = plan.windows(10).position(|w| w == b"b-hospital").unwrap();
    let mut unsorted = plan.clone();
    unsorted[a..a + 10].copy_from_slice(b"b-hospital");
    unsorted[b..b + 10].copy_from_slice(b"a-hospital");
    assert_eq!(
        Statement::decode(&unsorted),
        Err(DecodeError::NotCanonicalOrder("party set"))
    );

    // Negative zero in a metric.
    let mut negative_zero = contribution.clone();
    let zero_at = negative_zero
        .windows(9)
        .position(|w| w == [1, 0, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    negative_zero[zero_at + 1] = 0x80;
    assert!(Statement::decode(&negative_zero).is_err());
}

#[test]
fn a_dataset_statement_round_trips_through_its_canonical_bytes() {
    let statement = one_of_each().remove(12);
    let Statement::DatasetPrepared(prepared) = &statement else {
        panic!("not a DatasetPrepared: {statement:?}");
    };
    assert_eq!(statement.kind_name(), "DatasetPrepared");
    assert_eq!(statement.kind_code(), (13, 1));
    assert_eq!(prepared.records.value(), 1_240, "rows are bucketed up");
    let bytes = statement.encode();
    // kind, version, plan, registration, records u64, two u32 counts.
    let h = |s: &str| Hash::of_bytes(s.as_bytes());
    let mut expected = vec![13, 1];
    expected.extend_from_slice(&h("plan").0);
    expected.extend_from_slice(&h("reg").0);
    expected.extend_from_slice(&1_240u64.to_be_bytes());
    expected.extend_from_slice(&17u32.to_be_bytes());
    expected.extend_from_slice(&3u32.to_be_bytes());
    assert_eq!(bytes, expected);
    assert_eq!(Statement::decode(&bytes), Ok(statement.clone()));

    // And inside a signed entry.
    let federation = Federation::new(1, 1).unwrap();
    let entry = federation.by_hospital(0, statement.clone()).unwrap();
    let decoded = SignedEntry::from_bytes(entry.bytes()).unwrap();
    assert_eq!(decoded.statement(), &statement);
    assert_eq!(decoded.bytes(), entry.bytes());
}

#[test]
fn non_canonical_dataset_statements_are_rejected() {
    let bytes = one_of_each().remove(12).encode();
    let records_at = 2 + 32 + 32;

    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        Statement::decode(&trailing),
        Err(DecodeError::TrailingBytes(1))
    );
    assert!(Statement::decode(&bytes[..bytes.len() - 1]).is_err());

    // A row count that is not a bucket (exact counts are never stated), and
    // an empty table.
    for records in [1_234u64, 0] {
        let mut exact = bytes.clone();
        exact[records_at..records_at + 8].copy_from_slice(&records.to_be_bytes());
        assert!(Statement::decode(&exact).is_err(), "records {records}");
    }

    // Version 2 carries free-text counts after these fields: these bytes lack them.
    let mut text_version = bytes.clone();
    text_version[1] = 2;
    assert_eq!(
        Statement::decode(&text_version),
        Err(DecodeError::Truncated)
    );
    let mut unknown_version = bytes.clone();
    unknown_version[1] = 3;
    assert!(matches!(
        Statement::decode(&unknown_version),
        Err(DecodeError::UnknownStatement {
            kind: 13,
            version: 3
        })
    ));
    let mut unknown_kind = bytes.clone();
    unknown_kind[0] = 14;
    assert!(matches!(
        Statement::decode(&unknown_kind),
        Err(DecodeError::UnknownStatement {
            kind: 14,
            version: 1
        })
    ));
}

#[test]
fn random_mutations_decode_to_their_own_bytes_or_not_at_all() {
    let federation = Federation::new(2, 1).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let entries: Vec<Vec<u8>> = one_of_each()
        .into_iter()
        .map(|s| federation.by_coordinator(s).unwrap().bytes().to_vec())
        .collect();
    for _ in 0..20_000 {
        let mut bytes = entries[rng.random_range(0..entries.len())].clone();
        let at = rng.random_range(0..bytes.len());
        bytes[at] ^= rng.random_range(1..=255u8);
        if let Ok(entry) = SignedEntry::from_bytes(&bytes) {
            let reencoded = SignedEntry::sign(
                &federation.origin,
                entry.author().clone(),
                entry.statement().clone(),
                &federation.coordinator.1,
            )
            .unwrap();
            let body = bytes.len() - 64;
            assert_eq!(&reencoded.bytes()[..body], &bytes[..body], "flip at {at}");
        }
    }
}

#[test]
fn a_signature_made_for_one_log_does_not_verify_in_another() {
    let federation = Federation::new(2, 1).unwrap();
    let entry = federation.by_coordinator(one_of_each().remove(10)).unwrap();
    let coordinator: PublicKey = federation.coordinator.1.verifying_key().into();
    assert!(entry.verify(&federation.origin, &coordinator));
    assert!(!entry.verify(
        &LogOrigin::new("other.example/ledger").unwrap(),
        &coordinator
    ));
}

/// The canary stands for a patient's name in a hospital's records.
const CANARY: &str = "Margaret Hamilton-Canary 1936-08-17";

#[test]
fn no_text_field_of_the_schema_admits_a_patient_name() {
    assert!(PartyId::new(CANARY).is_err());
    assert!(PartyId::new(&CANARY.to_lowercase()).is_err());
    assert!(LogOrigin::new(CANARY).is_err());
    assert!(MetricKind::from_name(CANARY).is_none());
    assert!(Strategy::from_name(CANARY).is_none());
    assert!(ObjectionReason::from_name(CANARY).is_none());
    assert!(RevocationReason::from_name(CANARY).is_none());
    assert!(Role::from_name(CANARY).is_none());
}

/// A whole federation run in which the hospitals' data contains the canary:
/// everything a hospital derives from its records reaches the ledger only
/// through the typed API (a hash of the update, a bucketed count, numeric
/// metrics), so no byte of the log, the checkpoint or any witness's mirror
/// contains the name, in any casing or as an identifier.
///
/// This proves the property at the ledger's API; that the node feeds the
/// API from de-identified training only is the `deid` gate's job.
#[test]
fn a_planted_patient_name_never_reaches_the_log() {
    let records = format!("patient,age,chol\n{CANARY},58,239\nJohn Roe,61,201\n");
    let federation = Federation::new(3, 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut writer = federation.create_log(&dir.path().join("log")).unwrap();
    let mut witnesses = federation.witnesses(&dir.path().join("witnesses")).unwrap();
    let plan = federation
        .plan("canary", 2, Epsilon::from_micro(2_000_000))
        .unwrap();
    writer
        .append_batch(&federation.plan_entries(&plan).unwrap())
        .unwrap();
    for round in 1..=2 {
        writer
            .append(
                &federation
                    .by_coordinator(Statement::RoundOpened(RoundOpened {
                        plan: plan.plan,
                        round,
                        input_model: Federation::model_after(&plan, round - 1),
                    }))
                    .unwrap(),
            )
            .unwrap();
        let mut contributions = Vec::new();
        for i in 0..3 {
            let update = format!("{records}round {round} hospital {i} weights");
            let rows = records.lines().count() as u64 - 1;
            let contribution = Contribution {
                plan: plan.plan,
                round,
                update_hash: Hash::of_bytes(update.as_bytes()),
                samples: SampleBucket::of(rows).unwrap(),
                metrics: Metrics::new(vec![Metric {
                    kind: MetricKind::Accuracy,
                    value: Number::new(0.5).unwrap(),
                }])
                .unwrap(),
                epsilon_round: Epsilon::from_micro(500_000),
                epsilon_total: Epsilon::from_micro(500_000 * u64::from(round)),
                code_hash: plan.code_hash,
            };
            let entry = federation
                .by_hospital(i, Statement::Contribution(contribution))
                .unwrap();
            writer.append(&entry).unwrap();
            contributions.push(entry);
        }
        writer
            .append(&federation.aggregate(&plan, round, &contributions).unwrap())
            .unwrap();
    }
    writer
        .append(&federation.release(&plan, 2).unwrap())
        .unwrap();
    federation.publish(&mut writer, &mut witnesses, 1).unwrap();
    let report = ledger::audit::verify_log(&federation.policy().unwrap(), &dir.path().join("log"));
    assert!(report.is_clean(), "{report}");

    let needles: Vec<Vec<u8>> = [
        "margaret",
        "hamilton",
        "1936-08-17",
        "margaret-hamilton-canary",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut files = 0;
    for file in walk(dir.path()) {
        let bytes = std::fs::read(&file).unwrap().to_ascii_lowercase();
        files += 1;
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{} contains {:?}",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    assert!(files > 10);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
