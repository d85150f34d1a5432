//! Behaviour of the federation CA, party credentials and identities.

use std::path::Path;
use std::sync::Arc;

use pki::{CertificateAuthority, Error, PartyCredentials, PublicKey};
use x509_parser::extensions::GeneralName;

fn ca() -> CertificateAuthority {
    CertificateAuthority::generate("midwest").unwrap()
}

fn der(pem: &str) -> Vec<u8> {
    pki::pem_to_der(pem).unwrap()
}

#[test]
fn issued_cert_chains_to_ca() {
    let ca = ca();
    let party = ca.issue("cleveland").unwrap();
    pki::verify_issued_by(&party.cert_pem, ca.cert_pem()).unwrap();

    // Independently of the crate's helper: the CA key verifies the signature.
    let cert_der = der(&party.cert_pem);
    let ca_der = der(ca.cert_pem());
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    cert.verify_signature(Some(ca_cert.public_key())).unwrap();
    assert_eq!(cert.issuer(), ca_cert.subject());
    assert_eq!(party.ca_cert_pem, ca.cert_pem());
}

#[test]
fn cert_from_other_ca_does_not_verify() {
    let ours = ca();
    let theirs = CertificateAuthority::generate("midwest").unwrap();
    let intruder = theirs.issue("cleveland").unwrap();
    let err = pki::verify_issued_by(&intruder.cert_pem, ours.cert_pem()).unwrap_err();
    assert!(matches!(err, Error::NotIssuedBy(_)), "{err}");
}

#[test]
fn ca_cert_is_self_signed_ed25519_ca() {
    let ca = ca();
    let ca_der = der(ca.cert_pem());
    let (_, cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    assert!(cert.is_ca());
    assert!(cert.key_usage().unwrap().unwrap().value.key_cert_sign());
    assert_eq!(cert.subject().to_string(), "CN=midwest cohort CA, O=cohort");
    cert.verify_signature(None).unwrap();
    PublicKey::from_cert_der(&ca_der).unwrap();
}

#[test]
fn issued_cert_names_party_and_loopback_for_server_and_client_auth() {
    let party = ca().issue("cleveland").unwrap();
    let cert_der = der(&party.cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    assert!(!cert.is_ca());
    assert_eq!(cert.subject().to_string(), "CN=cleveland");
    let sans = &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert!(sans.contains(&GeneralName::DNSName("cleveland")));
    assert!(sans.contains(&GeneralName::DNSName("localhost")));
    assert!(sans.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
}

#[test]
fn validity_is_configurable_and_bounded() {
    let ca = ca();
    let party = ca.issue_with_validity("cleveland", 30).unwrap();
    let cert_der = der(&party.cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    let days =
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 31); // one day back-dated, 30 ahead
    assert!(matches!(
        ca.issue_with_validity("cleveland", 0),
        Err(Error::ZeroValidity)
    ));
}

#[test]
fn identity_public_key_equals_certificate_key() {
    let party = ca().issue("cleveland").unwrap();
    let from_identity = party.identity().unwrap().public_key();
    assert_eq!(
        from_identity,
        PublicKey::from_cert_pem(&party.cert_pem).unwrap()
    );
    assert_eq!(
        from_identity,
        PublicKey::from_cert_der(&der(&party.cert_pem)).unwrap()
    );
}

#[test]
fn sign_verify_round_trip() {
    let party = ca().issue("cleveland").unwrap();
    let signature = party.identity().unwrap().sign(b"round 3 update");
    let key = PublicKey::from_cert_pem(&party.cert_pem).unwrap();
    key.verify(b"round 3 update", &signature).unwrap();
}

#[test]
fn tampered_message_is_rejected() {
    let party = ca().issue("cleveland").unwrap();
    let signature = party.identity().unwrap().sign(b"round 3 update");
    let key = party.identity().unwrap().public_key();
    assert!(matches!(
        key.verify(b"round 3 updatE", &signature),
        Err(Error::BadSignature)
    ));
}

#[test]
fn signature_by_another_party_is_rejected() {
    let ca = ca();
    let signature = ca
        .issue("mayo")
        .unwrap()
        .identity()
        .unwrap()
        .sign(b"update");
    let cleveland = ca
        .issue("cleveland")
        .unwrap()
        .identity()
        .unwrap()
        .public_key();
    assert!(matches!(
        cleveland.verify(b"update", &signature),
        Err(Error::BadSignature)
    ));
}

#[test]
fn wrong_length_signature_is_rejected() {
    let key = ca()
        .issue("cleveland")
        .unwrap()
        .identity()
        .unwrap()
        .public_key();
    let err = key.verify(b"update", &[0u8; 63]).unwrap_err();
    assert!(matches!(err, Error::SignatureLength(63)), "{err}");
    assert!(err.to_string().contains("64 bytes"));
}

#[test]
fn public_key_hex_round_trip() {
    let key = ca()
        .issue("cleveland")
        .unwrap()
        .identity()
        .unwrap()
        .public_key();
    let hex = key.to_hex();
    assert_eq!(hex.len(), 64);
    assert_eq!(hex, hex.to_lowercase());
    assert_eq!(PublicKey::from_hex(&hex).unwrap(), key);
    assert!(matches!(
        PublicKey::from_hex(&hex[..62]),
        Err(Error::InvalidPublicKey(_))
    ));
    assert!(matches!(
        PublicKey::from_hex("zz"),
        Err(Error::InvalidPublicKey(_))
    ));
}

#[test]
fn ca_pem_round_trip_keeps_issuing_for_same_ca() {
    let ca = ca();
    let reloaded = CertificateAuthority::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
    assert_eq!(reloaded.cert_pem(), ca.cert_pem());
    assert_eq!(reloaded.key_pem(), ca.key_pem());
    let party = reloaded.issue("cleveland").unwrap();
    pki::verify_issued_by(&party.cert_pem, ca.cert_pem()).unwrap();
}

#[test]
fn ca_from_pem_rejects_mismatched_key() {
    let ca = ca();
    let other = CertificateAuthority::generate("midwest").unwrap();
    assert!(matches!(
        CertificateAuthority::from_pem(ca.cert_pem(), &other.key_pem()),
        Err(Error::KeyMismatch)
    ));
}

#[test]
fn ca_from_pem_rejects_leaf_certificate() {
    let party = ca().issue("cleveland").unwrap();
    assert!(matches!(
        CertificateAuthority::from_pem(&party.cert_pem, &party.key_pem),
        Err(Error::NotCa)
    ));
}

#[test]
fn ca_save_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca");
    let ca = ca();
    ca.save(&path).unwrap();
    let loaded = CertificateAuthority::load(&path).unwrap();
    assert_eq!(loaded.cert_pem(), ca.cert_pem());
    assert_eq!(loaded.key_pem(), ca.key_pem());
    let party = loaded.issue("cleveland").unwrap();
    pki::verify_issued_by(&party.cert_pem, ca.cert_pem()).unwrap();
}

#[test]
fn ca_key_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let first = ca();
    first.save(dir.path()).unwrap();
    let err = CertificateAuthority::generate("other")
        .unwrap()
        .save(dir.path())
        .unwrap_err();
    assert!(matches!(err, Error::KeyExists { .. }), "{err}");
    assert!(err.to_string().contains("ca.key"), "{err}");
    let loaded = CertificateAuthority::load(dir.path()).unwrap();
    assert_eq!(loaded.key_pem(), first.key_pem());
    assert_eq!(loaded.cert_pem(), first.cert_pem());
}

#[test]
fn party_save_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let party = ca().issue("cleveland").unwrap();
    party.save(dir.path()).unwrap();
    for file in ["cleveland.crt", "cleveland.key", "ca.crt"] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    let loaded = PartyCredentials::load(dir.path(), "cleveland").unwrap();
    assert_eq!(loaded.party, party.party);
    assert_eq!(loaded.cert_pem, party.cert_pem);
    assert_eq!(loaded.key_pem, party.key_pem);
    assert_eq!(loaded.ca_cert_pem, party.ca_cert_pem);
}

#[test]
fn party_save_keeps_existing_ca_cert() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    ca.save(dir.path()).unwrap();
    ca.issue("cleveland").unwrap().save(dir.path()).unwrap();
    ca.issue("mayo").unwrap().save(dir.path()).unwrap();
    PartyCredentials::load(dir.path(), "cleveland").unwrap();
    PartyCredentials::load(dir.path(), "mayo").unwrap();
    assert_eq!(
        CertificateAuthority::load(dir.path()).unwrap().cert_pem(),
        ca.cert_pem()
    );
}

#[test]
fn party_load_rejects_cert_from_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    ca().save(dir.path()).unwrap();
    ca().issue("cleveland").unwrap().save(dir.path()).unwrap(); // keeps the first ca.crt
    let err = PartyCredentials::load(dir.path(), "cleveland").unwrap_err();
    assert!(matches!(err, Error::NotIssuedBy(_)), "{err}");
}

#[test]
fn party_load_reports_missing_file_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = PartyCredentials::load(dir.path(), "cleveland").unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("cleveland.crt"), "{err}");
}

#[cfg(unix)]
#[test]
fn key_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    ca.save(dir.path()).unwrap();
    let key_path = dir.path().join("cleveland.key");
    std::fs::write(&key_path, "stale").unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    ca.issue("cleveland").unwrap().save(dir.path()).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("ca.key")), 0o600);
    assert_eq!(mode(&key_path), 0o600);
}

#[test]
fn invalid_party_names_are_rejected() {
    let ca = ca();
    let long = "a".repeat(64);
    for name in [
        "",
        "Cleveland",
        "cleve land",
        "cleveland.org",
        "-mayo",
        "mayo-",
        "123",
        "ca",
        "é",
        &long,
    ] {
        let err = ca.issue(name).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{name:?}: {err}");
        assert!(err.to_string().contains("party name"), "{err}");
    }
    assert!(matches!(
        CertificateAuthority::generate("Mid West"),
        Err(Error::InvalidName {
            kind: "federation",
            ..
        })
    ));
}

#[test]
fn valid_party_names_are_accepted() {
    let ca = ca();
    for name in ["a", "cleveland", "st-jude-2", "localhost", &"z".repeat(63)] {
        ca.issue(name).unwrap();
    }
}

#[test]
fn fingerprint_is_stable_across_load() {
    let dir = tempfile::tempdir().unwrap();
    let party = ca().issue("cleveland").unwrap();
    let fingerprint = party.cert_fingerprint().unwrap();
    assert_eq!(fingerprint.len(), 64);
    assert_eq!(fingerprint, pki::fingerprint_der(&der(&party.cert_pem)));
    party.save(dir.path()).unwrap();
    let loaded = PartyCredentials::load(dir.path(), "cleveland").unwrap();
    assert_eq!(loaded.cert_fingerprint().unwrap(), fingerprint);
}

#[test]
fn pem_to_der_skips_other_blocks_and_reports_missing_certificate() {
    let party = ca().issue("cleveland").unwrap();
    let bundle = format!("{}{}", party.key_pem, party.cert_pem);
    assert_eq!(pki::pem_to_der(&bundle).unwrap(), der(&party.cert_pem));
    assert!(matches!(
        pki::pem_to_der(&party.key_pem),
        Err(Error::NoCertificatePem)
    ));
}

// ---- mutual TLS with rustls (what the coordinator and nodes actually do) ----

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, Connection, RootCertStore, ServerConfig};

fn private_key_der(pem: &str) -> PrivateKeyDer<'static> {
    let block = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(Result::unwrap)
        .find(|b| b.label == "PRIVATE KEY")
        .unwrap();
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(block.contents))
}

fn roots(ca_cert_pem: &str) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(der(ca_cert_pem))).unwrap();
    Arc::new(roots)
}

fn chain(creds: &PartyCredentials) -> Vec<CertificateDer<'static>> {
    vec![CertificateDer::from(der(&creds.cert_pem))]
}

/// Run a TLS handshake in memory: `server` requires a client certificate from
/// its CA, `client` presents its own and trusts its CA.
fn handshake(
    server: &PartyCredentials,
    client: &PartyCredentials,
    name: &str,
) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots(&server.ca_cert_pem),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain(server), private_key_der(&server.key_pem))?;
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(&client.ca_cert_pem))
        .with_client_auth_cert(chain(client), private_key_der(&client.key_pem))?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut client = Connection::Client(rustls::ClientConnection::new(
        Arc::new(client_config),
        server_name,
    )?);
    let mut server = Connection::Server(rustls::ServerConnection::new(Arc::new(server_config))?);
    for _ in 0..10 {
        transfer(&mut client, &mut server)?;
        transfer(&mut server, &mut client)?;
        if !client.is_handshaking() && !server.is_handshaking() {
            // The server only checks the client certificate once the client's
            // last flight is in; flush it.
            transfer(&mut client, &mut server)?;
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

fn transfer(from: &mut Connection, to: &mut Connection) -> Result<(), rustls::Error> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).unwrap();
    }
    let mut slice = buf.as_slice();
    while !slice.is_empty() {
        to.read_tls(&mut slice).unwrap();
        to.process_new_packets()?;
    }
    Ok(())
}

#[test]
fn mutual_tls_succeeds_between_parties_of_one_ca() {
    let ca = ca();
    let coordinator = ca.issue("coordinator").unwrap();
    let node = ca.issue("cleveland").unwrap();
    for name in ["coordinator", "localhost", "127.0.0.1"] {
        handshake(&coordinator, &node, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // A node can serve too.
    handshake(&node, &coordinator, "cleveland").unwrap();
}

#[test]
fn mutual_tls_rejects_client_from_another_ca() {
    let coordinator = ca().issue("coordinator").unwrap();
    let mut intruder = ca().issue("cleveland").unwrap();
    // The intruder trusts our CA (so it accepts the server) but its own
    // certificate comes from another CA.
    intruder.ca_cert_pem = coordinator.ca_cert_pem.clone();
    let err = handshake(&coordinator, &intruder, "coordinator").unwrap_err();
    // Same CA name, different key: found by name, refused on its signature.
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(_)),
        "{err:?}"
    );
}

#[test]
fn mutual_tls_rejects_wrong_server_name() {
    let ca = ca();
    let coordinator = ca.issue("coordinator").unwrap();
    let node = ca.issue("cleveland").unwrap();
    let err = handshake(&coordinator, &node, "mayo").unwrap_err();
    assert!(format!("{err:?}").contains("NotValidForName"), "{err:?}");
}

/// Run `openssl` with `args`; its standard output, or why it failed.
fn openssl(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run openssl (install it: apt-get install openssl): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn openssl_reads_the_written_keys_and_their_public_keys_match_the_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    ca.save(dir.path()).unwrap();
    let party = ca.issue("cleveland").unwrap();
    party.save(dir.path()).unwrap();
    for (key, cert) in [("ca.key", "ca.crt"), ("cleveland.key", "cleveland.crt")] {
        let key = dir.path().join(key);
        let cert = dir.path().join(cert);
        let from_key = openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"])
            .unwrap_or_else(|e| panic!("openssl refuses {}: {e}", key.display()));
        let from_cert = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"])
            .unwrap_or_else(|e| panic!("openssl refuses {}: {e}", cert.display()));
        assert_eq!(
            from_key,
            from_cert,
            "{} is not the key of {}",
            key.display(),
            cert.display()
        );
    }
}

#[test]
fn keys_written_with_their_public_key_attached_still_load() {
    // PKCS#8 version 2 (OneAsymmetricKey with the public key), as earlier
    // versions of cohort wrote them.
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let v2 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let identity = pki::Identity::from_pkcs8_pem(&v2).unwrap();
    assert_eq!(identity.public_key().0, key.verifying_key().to_bytes());
}
