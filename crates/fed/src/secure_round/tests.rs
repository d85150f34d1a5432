//! Unit tests of the parameters, the messages' wire form and the encoding.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

fn params() -> SecureRoundParams {
    SecureRoundParams::new(7, names(&["a", "b", "c"]), 2, Topology::Complete, 3, 10.0).unwrap()
}

#[test]
fn parties_map_to_their_index_plus_one_and_back() {
    let params = params();
    assert_eq!(params.client_id("a"), Some(1));
    assert_eq!(params.client_id("c"), Some(3));
    assert_eq!(params.client_id("d"), None);
    assert_eq!(params.party(2), Some("b"));
    assert_eq!(params.party(0), None);
    assert_eq!(params.party(4), None);
    assert_eq!(params.round_config().clients, vec![1, 2, 3]);
}

#[test]
fn invalid_parameters_are_refused_with_a_reason() {
    let cases = [
        (names(&["b", "a"]), 2, 10.0, "sorted"),
        (names(&["a", "a"]), 2, 10.0, "sorted and distinct"),
        (names(&["", "a"]), 2, 10.0, "empty"),
        (names(&["a"]), 1, 10.0, "at least 2"),
        (names(&["a", "b", "c"]), 1, 10.0, "majority"),
        (names(&["a", "b", "c"]), 4, 10.0, "majority"),
        (names(&["a", "b", "c"]), 2, 0.0, "range"),
        (names(&["a", "b", "c"]), 2, f64::NAN, "range"),
    ];
    for (participants, threshold, range, expected) in cases {
        let err = SecureRoundParams::new(
            1,
            participants.clone(),
            threshold,
            Topology::Complete,
            3,
            range,
        )
        .unwrap_err();
        assert!(
            matches!(&err, SecureRoundError::InvalidParams(reason) if reason.contains(expected)),
            "{participants:?} t={threshold} R={range}: {err}"
        );
    }
}

#[test]
fn minimal_threshold_is_a_strict_majority_of_the_holders() {
    assert_eq!(
        SecureRoundParams::minimal_threshold(3, &Topology::Complete),
        2
    );
    assert_eq!(
        SecureRoundParams::minimal_threshold(4, &Topology::Complete),
        3
    );
    let harary = Topology::Harary {
        num_shares: 5,
        seed: [0; 32],
    };
    assert_eq!(SecureRoundParams::minimal_threshold(20, &harary), 3);
    assert_eq!(SecureRoundParams::minimal_threshold(3, &harary), 2);
}

#[test]
fn encoding_scales_the_delta_and_appends_the_count() {
    let encoded = encode_update(&[1.0, -1.0], &[1.5, -2.0], 4).unwrap();
    assert_eq!(encoded, vec![2.0, -4.0, 4.0]);
    assert_eq!(
        encode_update(&[1.0], &[1.0, 2.0], 1).unwrap_err(),
        SecureRoundError::WrongLength {
            what: "local weights",
            expected: 1,
            got: 2
        }
    );
    assert!(matches!(
        encode_update(&[1.0], &[f32::NAN], 1),
        Err(SecureRoundError::NonFinite { index: 0, .. })
    ));
}

#[test]
fn decoding_divides_by_the_count() {
    // Two nodes: n=1, Δ=[2, 0]; n=3, Δ=[-2, 4] → sum [-4, 12, 4], mean Δ [-1, 3].
    let sum = [-4.0, 12.0, 4.0];
    assert_eq!(weighted_mean_delta(&sum).unwrap(), vec![-1.0, 3.0]);
    assert_eq!(mean_model(&[1.0, 1.0], &sum).unwrap(), vec![0.0, 4.0]);
    assert_eq!(total_samples(&sum).unwrap(), 4);
    assert!(matches!(
        weighted_mean_delta(&[1.0, 0.2]),
        Err(SecureRoundError::ZeroSamples { .. })
    ));
    assert!(matches!(
        mean_model(&[1.0], &sum),
        Err(SecureRoundError::WrongLength { .. })
    ));
    assert!(weighted_mean_delta(&[]).is_err());
}

#[test]
fn range_covers_the_count_and_the_scaled_deltas() {
    assert_eq!(weighted_mean_range(100, 0.5).unwrap(), 100.0);
    assert_eq!(weighted_mean_range(100, 3.0).unwrap(), 300.0);
    assert!(weighted_mean_range(0, 1.0).is_err());
    assert!(weighted_mean_range(10, 0.0).is_err());
}

#[test]
fn client_refuses_out_of_order_and_foreign_tasks() {
    let mut rng = StdRng::seed_from_u64(2);
    let params = params();
    let mut client = SecureRoundClient::new(params.clone(), "a").unwrap();
    let unmask = SecureTask::Unmask {
        request: privacy::secagg::UnmaskingRequest {
            round_id: 7,
            survivors: vec![1, 2],
        },
    };
    assert!(matches!(
        client.respond(&unmask, &[], &mut rng),
        Err(SecureRoundError::ClientState { .. })
    ));
    let mut other = params.clone();
    other.round_id = 8;
    let foreign = SecureTask::AdvertiseKeys { params: other };
    assert!(matches!(
        client.respond(&foreign, &[], &mut rng),
        Err(SecureRoundError::ClientState { .. })
    ));
    client.advertise(&mut rng).unwrap();
    assert!(matches!(
        client.advertise(&mut rng),
        Err(SecureRoundError::ClientState { .. })
    ));
    assert!(matches!(
        SecureRoundClient::new(params, "z"),
        Err(SecureRoundError::UnknownParty { .. })
    ));
}
