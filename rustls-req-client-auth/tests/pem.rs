//! Loading identities and trust anchors from PEM files: every error names the
//! file and what is wrong with it.

use std::fs;

use integration_tests::TestPki;
use rustls_req_client_auth::{pem, BotClient, ConfigError, OnePortConfig};

#[test]
fn pem_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = TestPki::shared();
    let path = |name: &str| dir.path().join(name);
    fs::write(path("bot.pem"), &pki.bot.chain_pem).expect("write");
    fs::write(path("bot.key"), &pki.bot.key_pem).expect("write");
    fs::write(path("other.key"), &pki.normal_client.key_pem).expect("write");
    fs::write(path("ca.pem"), &pki.server_ca.cert_pem).expect("write");
    fs::write(path("empty.pem"), "no PEM here\n").expect("write");
    fs::write(
        path("broken.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    )
    .expect("write");

    let message = |error: &dyn std::error::Error| error.to_string();
    let missing = pem::load_certificates(path("missing.pem")).expect_err("missing");
    assert!(
        message(&missing).starts_with(&format!("cannot read {}", path("missing.pem").display()))
    );
    let empty = pem::load_certificates(path("empty.pem")).expect_err("no certificate");
    assert_eq!(
        message(&empty),
        format!(
            "{} holds no PEM CERTIFICATE block",
            path("empty.pem").display()
        )
    );
    let broken = pem::load_roots(path("broken.pem")).expect_err("broken");
    assert!(message(&broken).starts_with(&format!(
        "{} is not valid PEM",
        path("broken.pem").display()
    )));
    // The markers pki-types reports as bytes are said as text: a file cut
    // short (a copy that did not finish) names the line that is missing.
    let key = &pki.bot.key_pem;
    fs::write(path("cut.key"), &key[..key.len() / 2]).expect("write");
    let cut = pem::load_private_key(path("cut.key")).expect_err("cut short");
    assert!(
        message(&cut)
            .contains("a block has no `-----END PRIVATE KEY-----` line (is the file cut short?)"),
        "{}",
        message(&cut)
    );
    let no_key = pem::load_private_key(path("bot.pem")).expect_err("no key");
    assert!(message(&no_key).starts_with(&format!(
        "{} holds no PEM private key",
        path("bot.pem").display()
    )));
    assert_eq!(no_key.path(), path("bot.pem"));

    // A key that belongs to another certificate: named with the certificate file.
    let mismatched = BotClient::from_pem_files(path("bot.pem"), path("other.key"))
        .expect("both files read")
        .trust_pem_file(path("ca.pem"))
        .expect("CA")
        .client_config()
        .expect_err("key mismatch");
    assert!(matches!(mismatched, ConfigError::Pem(_)), "{mismatched:?}");
    assert!(
        message(&mismatched).starts_with(&format!(
            "{} and its key do not make a usable identity",
            path("bot.pem").display()
        )),
        "{mismatched}"
    );

    // A bot without any CA to check servers with.
    let untrusting = BotClient::from_pem_files(path("bot.pem"), path("bot.key"))
        .expect("files")
        .client_config()
        .expect_err("no CA");
    assert!(matches!(untrusting, ConfigError::NoTrustAnchors));

    // The server side reads the same way.
    let server =
        OnePortConfig::from_pem_files(path("bot.pem"), path("missing.key"), path("ca.pem"))
            .expect_err("missing key");
    assert!(message(&server).contains("missing.key"));
    assert!(
        OnePortConfig::from_pem_files(path("bot.pem"), path("bot.key"), path("ca.pem"))
            .expect("files")
            .build()
            .is_ok()
    );
}

/// `pem::certified_key` says what to fix for the usual mistakes: a chain
/// with its CA first (the key then matches no first certificate), and an
/// X.509 version 1 certificate (what `openssl x509 -req` makes without
/// extensions, made here by that command when it is installed).
#[test]
fn unusable_identities_say_what_to_fix() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = TestPki::shared();
    let provider = integration_tests::Provider::AwsLcRs.crypto();
    let key = || pki.bot.key();
    let reversed: Vec<_> = pki.bot.chain.iter().rev().cloned().collect();
    let error = pem::certified_key(dir.path().join("site.pem"), reversed, key(), &provider)
        .expect_err("the CA first");
    assert!(
        error.to_string().contains(
            "the key does not belong to the first certificate, which must be the end entity's own"
        ),
        "{error}"
    );
    let in_order = pem::certified_key("site.pem", pki.bot.chain.clone(), key(), &provider);
    assert!(in_order.is_ok(), "{:?}", in_order.err());

    // Version 1, signed by a CA of its own.
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .is_ok_and(|output| output.status.success())
    };
    let made = run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=ca",
    ]) && run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "v1.key",
        "-out",
        "v1.csr",
        "-subj",
        "/CN=localhost",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "v1.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "v1.pem",
    ]);
    if !made {
        eprintln!("openssl is not installed: the version 1 case is left out");
        return;
    }
    let v1 = dir.path().join("v1.pem");
    let error = pem::certified_key(
        &v1,
        pem::load_certificates(&v1).expect("the certificate"),
        pem::load_private_key(dir.path().join("v1.key")).expect("the key"),
        &provider,
    )
    .expect_err("version 1");
    assert!(
        error.to_string().contains("is not X.509 version 3"),
        "{error}"
    );
}

/// The usual slips with the files say what the file holds instead and what
/// to do: a certificate and key the other way round, DER for PEM, an
/// encrypted key (PKCS#8 and the traditional OpenSSL form).
#[test]
fn common_slips_say_what_the_file_holds() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pki = TestPki::shared();
    let path = |name: &str| dir.path().join(name);
    fs::write(path("bot.pem"), &pki.bot.chain_pem).expect("write");
    fs::write(path("bot.key"), &pki.bot.key_pem).expect("write");
    fs::write(path("bot.der"), pki.bot.chain[0].as_ref()).expect("write");
    fs::write(path("bot.key.der"), pki.bot.key().secret_der()).expect("write");
    fs::write(
        path("pkcs8-encrypted.key"),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .expect("write");
    fs::write(
        path("traditional-encrypted.key"),
        "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n",
    )
    .expect("write");

    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("an Ed25519 key");
    fs::write(path("ed25519.key.der"), ed25519.serialize_der()).expect("write");
    let swapped = "are the certificate and the key files given the other way round?";
    let certificate = |name: &str| {
        pem::load_certificates(path(name))
            .expect_err(name)
            .to_string()
    };
    let key = |name: &str| {
        pem::load_private_key(path(name))
            .expect_err(name)
            .to_string()
    };
    for (message, expected) in [
        (certificate("bot.key"), swapped),
        (key("bot.pem"), swapped),
        (
            certificate("bot.der"),
            "`openssl x509 -inform DER -in FILE -out FILE.pem`",
        ),
        (
            key("bot.key.der"),
            "`openssl pkey -inform DER -in FILE -out FILE.pem`",
        ),
        (
            key("pkcs8-encrypted.key"),
            "an encrypted private key, which is not supported",
        ),
        (
            key("traditional-encrypted.key"),
            "an encrypted private key, which is not supported",
        ),
        // An encrypted key given as the certificate: the files swapped.
        (certificate("pkcs8-encrypted.key"), swapped),
        // A DER key too small for a long-form length (Ed25519: 48 bytes).
        (
            key("ed25519.key.der"),
            "`openssl pkey -inform DER -in FILE -out FILE.pem`",
        ),
    ] {
        assert!(message.contains(expected), "{message}");
    }
    // A file that merely is not PEM gets no guess.
    fs::write(path("text.pem"), "hello\n").expect("write");
    assert!(
        !certificate("text.pem").contains("; "),
        "{}",
        certificate("text.pem")
    );
}
