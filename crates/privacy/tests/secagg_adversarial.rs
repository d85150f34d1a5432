//! Secure aggregation against a curious or lying server and against bad messages: masked inputs
//! look uniform, a server that lies about a dropout cannot unmask anyone, and malformed,
//! misrouted or replayed messages are refused.

use std::collections::BTreeMap;

use privacy::secagg::{
    AdvertiseKeys, ClientId, KeyDirectory, MaskedInput, RoundConfig, SecAggClient, SecAggError,
    SecAggServer, ShareDelivery, ShareKind, Topology, UnmaskingRequest,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const ROUND: u64 = 7;

/// A round driven step by step, so tests can intercept and forge messages.
struct Round {
    clients: BTreeMap<ClientId, SecAggClient>,
    server: SecAggServer,
    rng: ChaCha20Rng,
    vector_len: usize,
}

impl Round {
    fn new(clients: u32, threshold: usize, vector_len: usize) -> Round {
        let config = RoundConfig {
            round_id: ROUND,
            clients: (0..clients).collect(),
            threshold,
            topology: Topology::Complete,
            vector_len,
        };
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(clients) * 1000 + vector_len as u64);
        let clients = (0..clients)
            .map(|id| (id, SecAggClient::new(config.clone(), id, &mut rng).unwrap()))
            .collect();
        Round {
            clients,
            server: SecAggServer::new(config).unwrap(),
            rng,
            vector_len,
        }
    }

    fn advertise(&mut self) -> Vec<AdvertiseKeys> {
        self.clients
            .values_mut()
            .map(|c| c.advertise_keys().unwrap())
            .collect()
    }

    fn directories(&mut self) -> Vec<KeyDirectory> {
        for keys in self.advertise() {
            self.server.receive_keys(keys).unwrap();
        }
        self.server.key_directories().unwrap()
    }

    fn deliveries(&mut self) -> Vec<ShareDelivery> {
        for directory in self.directories() {
            let client = self.clients.get_mut(&directory.recipient).unwrap();
            let shares = client.share_keys(&directory, &mut self.rng).unwrap();
            self.server.receive_shares(shares).unwrap();
        }
        self.server.share_deliveries().unwrap()
    }

    /// Every client's masked input of the all-`value` vector.
    fn masked_inputs(&mut self, value: u32) -> Vec<MaskedInput> {
        let input = vec![value; self.vector_len];
        self.deliveries()
            .iter()
            .map(|delivery| {
                self.clients
                    .get_mut(&delivery.recipient)
                    .unwrap()
                    .mask_input(delivery, &input)
                    .unwrap()
            })
            .collect()
    }

    /// Runs to the unmasking request with every input submitted.
    fn request(&mut self) -> UnmaskingRequest {
        for input in self.masked_inputs(5) {
            self.server.receive_masked_input(input).unwrap();
        }
        self.server.unmasking_request().unwrap()
    }

    fn client(&mut self, id: ClientId) -> &mut SecAggClient {
        self.clients.get_mut(&id).unwrap()
    }
}

#[test]
fn masked_inputs_are_indistinguishable_from_uniform() {
    let mut round = Round::new(3, 2, 100_000);
    // All-zero inputs: whatever structure the masked words have comes from the masks.
    for masked in round.masked_inputs(0) {
        let words = &masked.words;
        let n = words.len() as f64;
        for bit in 0..32 {
            let ones = words.iter().filter(|&&w| w >> bit & 1 == 1).count() as f64;
            // Binomial(n, 1/2): mean n/2, standard deviation √n/2; allow 5 deviations.
            assert!(
                (ones - n / 2.0).abs() < 5.0 * n.sqrt() / 2.0,
                "client {} bit {bit}: {ones}",
                masked.sender
            );
        }
        for shift in [0, 8, 16, 24] {
            let mut counts = [0f64; 256];
            words
                .iter()
                .for_each(|&w| counts[(w >> shift & 0xff) as usize] += 1.0);
            let expected = n / 256.0;
            let chi_square: f64 = counts
                .iter()
                .map(|c| (c - expected).powi(2) / expected)
                .sum();
            // 255 degrees of freedom: the 0.999 quantile is 330.5.
            assert!(
                chi_square < 330.5,
                "client {} byte at bit {shift}: chi² {chi_square}",
                masked.sender
            );
        }
    }
}

#[test]
fn server_lying_that_a_client_dropped_cannot_unmask_it() {
    let mut round = Round::new(5, 3, 16);
    let honest = round.request();
    assert_eq!(honest.survivors, vec![0, 1, 2, 3, 4]);
    // The server received client 2's masked input but claims it dropped, hoping for its s^SK
    // shares now (to strip its pairwise masks) and its b shares later.
    let lie = UnmaskingRequest {
        round_id: ROUND,
        survivors: vec![0, 1, 3, 4],
    };
    assert_eq!(
        round.client(2).unmask(&lie),
        Err(SecAggError::ClaimedDropped { client: 2 })
    );
    for id in [0, 1, 3, 4] {
        let response = round.client(id).unmask(&lie).unwrap();
        let about_2: Vec<_> = response.shares.iter().filter(|s| s.owner == 2).collect();
        assert_eq!(about_2.len(), 1);
        assert_eq!(
            about_2[0].kind,
            ShareKind::MaskSecretKey,
            "never the self-mask seed of a 'dropped' client"
        );
        // Asked again, now with client 2 as a survivor: refused, so b_2 never leaves.
        assert_eq!(
            round.client(id).unmask(&honest),
            Err(SecAggError::AlreadyUnmasked { client: id })
        );
    }
    // Only client 2 itself would still answer, and one share is below the threshold of 3.
    let from_2 = round.client(2).unmask(&honest).unwrap();
    let b_shares = from_2
        .shares
        .iter()
        .filter(|s| s.owner == 2 && s.kind == ShareKind::SelfMaskSeed)
        .count();
    assert_eq!(b_shares, 1);
}

#[test]
fn unmasking_request_below_threshold_is_refused() {
    let mut round = Round::new(5, 3, 4);
    round.request();
    let too_few = UnmaskingRequest {
        round_id: ROUND,
        survivors: vec![0, 1],
    };
    let refused = round.client(0).unmask(&too_few);
    assert!(matches!(
        refused,
        Err(SecAggError::TooFewClients {
            available: 2,
            threshold: 3,
            ..
        })
    ));
    // Refusing did not use up the client's one answer.
    let honest = UnmaskingRequest {
        round_id: ROUND,
        survivors: vec![0, 1, 2, 3, 4],
    };
    assert!(round.client(0).unmask(&honest).is_ok());
}

#[test]
fn malformed_unmasking_requests_are_refused() {
    let mut round = Round::new(4, 3, 4);
    round.request();
    let cases = [
        UnmaskingRequest {
            round_id: ROUND,
            survivors: vec![2, 1, 0, 3],
        },
        UnmaskingRequest {
            round_id: ROUND,
            survivors: vec![0, 1, 1, 3],
        },
        UnmaskingRequest {
            round_id: ROUND,
            survivors: vec![0, 1, 3, 99],
        },
    ];
    for request in cases {
        assert!(
            matches!(
                round.client(0).unmask(&request),
                Err(SecAggError::Malformed { .. })
            ),
            "{request:?}"
        );
    }
    let stale = UnmaskingRequest {
        round_id: ROUND - 1,
        survivors: vec![0, 1, 2, 3],
    };
    assert_eq!(
        round.client(0).unmask(&stale),
        Err(SecAggError::WrongRound {
            expected: ROUND,
            got: ROUND - 1
        })
    );
}

#[test]
fn server_refuses_wrong_round_unknown_sender_and_replayed_keys() {
    let mut round = Round::new(3, 2, 4);
    let keys = round.advertise();
    let stale = AdvertiseKeys {
        round_id: ROUND + 1,
        ..keys[0].clone()
    };
    assert_eq!(
        round.server.receive_keys(stale),
        Err(SecAggError::WrongRound {
            expected: ROUND,
            got: ROUND + 1
        })
    );
    let stranger = AdvertiseKeys {
        sender: 77,
        ..keys[0].clone()
    };
    assert!(matches!(
        round.server.receive_keys(stranger),
        Err(SecAggError::UnknownSender { sender: 77, .. })
    ));
    let same_key = AdvertiseKeys {
        mask_public_key: keys[0].cipher_public_key,
        ..keys[0].clone()
    };
    assert!(matches!(
        round.server.receive_keys(same_key),
        Err(SecAggError::Malformed { .. })
    ));
    round.server.receive_keys(keys[0].clone()).unwrap();
    assert!(matches!(
        round.server.receive_keys(keys[0].clone()),
        Err(SecAggError::Replayed { sender: 0, .. })
    ));
}

#[test]
fn server_refuses_malformed_shares_and_inputs() {
    let mut round = Round::new(3, 2, 4);
    let directories = round.directories();
    let mut shares: Vec<_> = directories
        .iter()
        .map(|d| {
            round
                .clients
                .get_mut(&d.recipient)
                .unwrap()
                .share_keys(d, &mut round.rng)
                .unwrap()
        })
        .collect();
    let mut truncated = shares[0].clone();
    truncated.shares[0].ciphertext.pop();
    assert!(matches!(
        round.server.receive_shares(truncated),
        Err(SecAggError::WrongLength { .. })
    ));
    let mut missing = shares[0].clone();
    missing.shares.pop();
    assert!(matches!(
        round.server.receive_shares(missing),
        Err(SecAggError::Malformed { .. })
    ));
    let mut forged = shares[0].clone();
    forged.shares[0].sender = 2;
    assert!(matches!(
        round.server.receive_shares(forged),
        Err(SecAggError::Malformed { .. })
    ));
    // A masked input before the share step is closed is out of order.
    let early = MaskedInput {
        round_id: ROUND,
        sender: 0,
        words: vec![0; 4],
    };
    assert!(matches!(
        round.server.receive_masked_input(early),
        Err(SecAggError::UnexpectedMessage { .. })
    ));
    for message in shares.drain(..) {
        round.server.receive_shares(message.clone()).unwrap();
        assert!(matches!(
            round.server.receive_shares(message),
            Err(SecAggError::Replayed { .. })
        ));
    }
    let deliveries = round.server.share_deliveries().unwrap();
    let input = round
        .client(0)
        .mask_input(&deliveries[0], &[1, 2, 3, 4])
        .unwrap();
    let short = MaskedInput {
        words: vec![0; 3],
        ..input.clone()
    };
    assert_eq!(
        round.server.receive_masked_input(short),
        Err(SecAggError::WrongLength {
            what: "masked input",
            expected: 4,
            got: 3
        })
    );
    round.server.receive_masked_input(input.clone()).unwrap();
    assert!(matches!(
        round.server.receive_masked_input(input),
        Err(SecAggError::Replayed { sender: 0, .. })
    ));
}

#[test]
fn client_refuses_tampered_misrouted_or_replayed_deliveries() {
    let mut round = Round::new(3, 2, 4);
    let deliveries = round.deliveries();
    let delivery = deliveries[0].clone();
    let input = [0u32; 4];
    let mut tampered = delivery.clone();
    tampered.shares[0].ciphertext[30] ^= 0x40;
    let sender = tampered.shares[0].sender;
    assert_eq!(
        round.client(0).mask_input(&tampered, &input),
        Err(SecAggError::ShareAuthenticationFailed { sender })
    );
    assert!(matches!(
        round.client(1).mask_input(&delivery, &input),
        Err(SecAggError::WrongRecipient { .. })
    ));
    let mut doubled = delivery.clone();
    doubled.shares.push(doubled.shares[0].clone());
    assert!(matches!(
        round.client(0).mask_input(&doubled, &input),
        Err(SecAggError::Replayed { .. })
    ));
    assert!(matches!(
        round.client(0).mask_input(&delivery, &[0; 5]),
        Err(SecAggError::WrongLength { .. })
    ));
    round.client(0).mask_input(&delivery, &input).unwrap();
    assert!(matches!(
        round.client(0).mask_input(&delivery, &input),
        Err(SecAggError::UnexpectedMessage { .. })
    ));
}

#[test]
fn client_refuses_a_directory_that_alters_its_keys() {
    let mut round = Round::new(3, 2, 4);
    let directories = round.directories();
    let mut altered = directories[0].clone();
    let own = altered.keys.iter_mut().find(|k| k.sender == 0).unwrap();
    own.mask_public_key[0] ^= 1;
    assert!(matches!(
        round
            .client(0)
            .share_keys(&altered, &mut ChaCha20Rng::seed_from_u64(0)),
        Err(SecAggError::Malformed { .. })
    ));
    let mut weak = directories[0].clone();
    let peer = weak.keys.iter_mut().find(|k| k.sender == 1).unwrap();
    peer.cipher_public_key = [0; 32];
    assert_eq!(
        round
            .client(0)
            .share_keys(&weak, &mut ChaCha20Rng::seed_from_u64(0)),
        Err(SecAggError::WeakPublicKey { client: 1 })
    );
}

#[test]
fn server_refuses_unmasking_responses_of_the_wrong_kind() {
    let mut round = Round::new(4, 3, 4);
    let request = round.request();
    let mut response = round.client(0).unmask(&request).unwrap();
    let mut wrong_kind = response.clone();
    wrong_kind.shares[1].kind = ShareKind::MaskSecretKey;
    assert!(matches!(
        round.server.receive_unmasking(wrong_kind),
        Err(SecAggError::Malformed { .. })
    ));
    let mut short = response.clone();
    short.shares[0].share.truncate(10);
    assert!(matches!(
        round.server.receive_unmasking(short),
        Err(SecAggError::Malformed { .. })
    ));
    response.sender = 9;
    assert!(matches!(
        round.server.receive_unmasking(response),
        Err(SecAggError::UnknownSender { sender: 9, .. })
    ));
}

#[test]
fn failed_round_accepts_nothing_more() {
    let mut round = Round::new(4, 3, 4);
    let keys = round.advertise();
    round.server.receive_keys(keys[0].clone()).unwrap();
    round.server.receive_keys(keys[1].clone()).unwrap();
    assert!(matches!(
        round.server.key_directories(),
        Err(SecAggError::TooFewClients { .. })
    ));
    assert_eq!(
        round.server.receive_keys(keys[2].clone()),
        Err(SecAggError::RoundFailed)
    );
    assert_eq!(
        round.server.key_directories(),
        Err(SecAggError::RoundFailed)
    );
}

#[test]
fn messages_survive_serialisation_and_the_round_completes() {
    fn through_json<T: serde::Serialize + serde::de::DeserializeOwned>(message: T) -> T {
        serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap()
    }
    let mut round = Round::new(4, 3, 6);
    for keys in round.advertise() {
        round.server.receive_keys(through_json(keys)).unwrap();
    }
    for directory in round.server.key_directories().unwrap() {
        let directory = through_json(directory);
        let client = round.clients.get_mut(&directory.recipient).unwrap();
        round
            .server
            .receive_shares(through_json(
                client.share_keys(&directory, &mut round.rng).unwrap(),
            ))
            .unwrap();
    }
    for delivery in round.server.share_deliveries().unwrap() {
        let delivery = through_json(delivery);
        let input: Vec<u32> = (0..6).map(|i| delivery.recipient * 10 + i).collect();
        let masked = round
            .client(delivery.recipient)
            .mask_input(&delivery, &input)
            .unwrap();
        round
            .server
            .receive_masked_input(through_json(masked))
            .unwrap();
    }
    let request = through_json(round.server.unmasking_request().unwrap());
    for id in 0..4 {
        let response = round.client(id).unmask(&request).unwrap();
        round
            .server
            .receive_unmasking(through_json(response))
            .unwrap();
    }
    let outcome = round.server.finish().unwrap();
    assert_eq!(outcome.sum, vec![60, 64, 68, 72, 76, 80]);
}
