//! What `rca-probe`'s three connections on one code point mean: the
//! findings, said in words, and the verdict. No I/O here: the connections'
//! accounts in, the judgement out.

use super::{Connection, Verdict};

/// The finding for a bot certificate given (`--cert`) and not sent: the
/// flagged connection's CertificateRequest did not acknowledge the flag,
/// and the probe, as rca-connect, sends the identity only to one that does
/// (RCA-9). Not a fault of the server's: a finding, not a verdict.
pub(super) fn identity_withheld(with_flag: &Connection, identity_given: bool) -> Option<String> {
    (identity_given && with_flag.certificate_request && !with_flag.acknowledged).then(|| {
        "the certificate given with --cert was not sent: the request did not acknowledge the flag, \
         and the probe, like rca-connect, sends the identity only to one that does"
            .to_owned()
    })
}

/// The findings and the verdict for one code point's connections: without
/// the flag, with it, and with it again (resuming where the server allows).
pub(super) fn judge(
    without_flag: &Connection,
    with_flag: &Connection,
    second: &Connection,
) -> (Vec<String>, Verdict) {
    let mut findings = Vec::new();
    let mut misbehaves = false;
    for (label, connection) in [
        ("without the flag", without_flag),
        ("with the flag", with_flag),
        ("on the second connection", second),
    ] {
        if let Some(rule) = &connection.rule_broken {
            misbehaves = true;
            findings.push(format!(
                "{label}: the server broke {rule}: {}",
                connection.error.as_deref().unwrap_or("")
            ));
        }
    }
    if let Some(failure) = fails_only_with_the_flag(without_flag, with_flag, second) {
        misbehaves = true;
        findings.push(format!(
            "with the flag the handshake failed ({failure}) where it succeeded without: the server, or \
             something on the path, rejects the TLS Flags extension instead of ignoring it as an unknown \
             extension (RFC 8446 section 9.3), so bots that set the flag cannot connect"
        ));
    }
    if second.resumed && second.certificate_request {
        misbehaves = true;
        findings.push("a CertificateRequest under a PSK (resumption) breaks RCA-11".into());
    }
    findings.extend(what_the_requests_mean(without_flag, with_flag, second));
    let connected = [without_flag, with_flag].iter().any(|connection| {
        connection.version.is_some()
            || connection.rule_broken.is_some()
            || connection.certificate_required
    });
    let flag_request = with_flag.certificate_request
        && (with_flag.acknowledged || !without_flag.certificate_request);
    if with_flag.identity_refused {
        findings.push(format!(
            "with the flag: the server refused the identity sent ({})",
            with_flag.error.as_deref().unwrap_or("no answer")
        ));
    }
    let verdict = if misbehaves {
        Verdict::Misbehaves
    } else if !connected {
        Verdict::CouldNotConnect
    } else if flag_request && with_flag.identity_refused {
        Verdict::IdentityRefused
    } else if flag_request {
        Verdict::Honours
    } else {
        Verdict::NotSupported
    };
    (findings, verdict)
}

/// Why the flagged handshakes failed, when the one without the flag did
/// not: both flagged ones ended by the server on the ClientHello (an alert,
/// a reset or a close; no CertificateRequest, no rule broken), so one flaky
/// connection, a timeout or the probe's own refusal of a certificate is
/// not taken for a server that rejects the extension.
fn fails_only_with_the_flag<'a>(
    without_flag: &Connection,
    with_flag: &'a Connection,
    second: &Connection,
) -> Option<&'a str> {
    if without_flag.version.is_none() || !with_flag.hello_rejected || !second.hello_rejected {
        return None;
    }
    with_flag.error.as_deref()
}

/// Whether an HTTP/1.x status line is a 400.
fn is_bad_request(status_line: &str) -> bool {
    status_line.starts_with("HTTP/1.") && status_line.split(' ').nth(1) == Some("400")
}

/// What the three connections' certificate requests (or their absence) mean
/// for people and bots.
fn what_the_requests_mean(
    without_flag: &Connection,
    with_flag: &Connection,
    second: &Connection,
) -> Vec<String> {
    let mut findings = Vec::new();
    if without_flag.certificate_request {
        findings.push(
            "every client gets a CertificateRequest, flag or not: browsers would see a certificate picker"
                .into(),
        );
    }
    if without_flag.certificate_required || with_flag.certificate_required {
        findings.push(
            "the server demands a certificate of every client (ordinary mutual TLS): it refused the \
             empty Certificate the probe answers a request that does not acknowledge the flag with \
             (as rca-connect does, so the bot's identity goes only where the flag takes it)"
                .into(),
        );
    }
    if without_flag.certificate_request
        && !without_flag.certificate_required
        && without_flag
            .http_status
            .as_deref()
            .is_some_and(is_bad_request)
    {
        findings.push(
            "after the empty Certificate the server answered 400: it likely demands a certificate of \
             every client in HTTP rather than in TLS (nginx's `ssl_verify_client on` answers \
             \"400 No required SSL certificate was sent\")"
                .into(),
        );
    }
    if with_flag.version.as_deref() == Some("TLSv1_2") {
        findings.push(
            "the server negotiated TLS 1.2, where the flag does nothing (RCA-12): it needs TLS 1.3"
                .into(),
        );
    }
    match (with_flag.certificate_request, with_flag.acknowledged) {
        (true, true) => findings.push(
            "with the flag: a CertificateRequest that acknowledges it (the draft's behaviour)".into(),
        ),
        (true, false) if !without_flag.certificate_request => findings.push(
            "with the flag: a CertificateRequest without the acknowledgement (as Cloudflare's 2023 servers did)"
                .into(),
        ),
        _ => {}
    }
    if second.version.is_some() {
        findings.push(if second.resumed {
            "the second connection resumed the session".into()
        } else {
            "the second connection was a full handshake".into()
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn over(version: &str) -> Connection {
        Connection {
            version: Some(version.to_owned()),
            ..Connection::default()
        }
    }

    fn asked(mut connection: Connection, acknowledged: bool) -> Connection {
        connection.certificate_request = true;
        connection.acknowledged = acknowledged;
        connection
    }

    #[test]
    fn an_acknowledged_request_on_the_flag_only_honours_it() {
        let (findings, verdict) = judge(
            &over("TLSv1_3"),
            &asked(over("TLSv1_3"), true),
            &over("TLSv1_3"),
        );
        assert_eq!(verdict, Verdict::Honours);
        assert!(findings.iter().any(|f| f.contains("the draft's behaviour")));
    }

    #[test]
    fn a_server_that_could_not_be_verified_is_not_connected() {
        // In TLS 1.3 the request came before the server's certificate,
        // which the probe refused: no version, nothing the server refused.
        let failed = Connection {
            error: Some("invalid peer certificate: UnknownIssuer".to_owned()),
            ..Connection::default()
        };
        let (_, verdict) = judge(&failed, &failed, &failed);
        assert_eq!(verdict, Verdict::CouldNotConnect);
    }

    #[test]
    fn tls12_asking_everyone_does_not_support_the_flag() {
        let (findings, verdict) = judge(
            &asked(over("TLSv1_2"), false),
            &asked(over("TLSv1_2"), false),
            &over("TLSv1_2"),
        );
        assert_eq!(verdict, Verdict::NotSupported);
        assert!(findings.iter().any(|f| f.contains("certificate picker")));
        assert!(findings.iter().any(|f| f.contains("RCA-12")));
    }

    #[test]
    fn a_handshake_that_fails_only_with_the_flag_misbehaves() {
        let reset = Connection {
            error: Some("Connection reset by peer (os error 104)".to_owned()),
            flag_sent: true,
            hello_rejected: true,
            ..Connection::default()
        };
        let (findings, verdict) = judge(&over("TLSv1_3"), &reset, &reset);
        assert_eq!(verdict, Verdict::Misbehaves);
        assert!(
            findings
                .iter()
                .any(|f| f.contains("rejects the TLS Flags extension")),
            "{findings:?}"
        );
        // Failing both ways is not the flag's doing.
        let (_, verdict) = judge(&reset, &reset, &reset);
        assert_eq!(verdict, Verdict::CouldNotConnect);
        // Nor is one flagged connection that failed while the other
        // connected, or failures the server did not cause (a timeout, no
        // TCP connection, a certificate the probe refused).
        let (_, verdict) = judge(&over("TLSv1_3"), &reset, &over("TLSv1_3"));
        assert_eq!(verdict, Verdict::NotSupported);
        for error in [
            "no answer within 10s",
            "cannot connect to localhost:1: Connection refused (os error 111)",
            "invalid peer certificate: UnknownIssuer",
        ] {
            let failed = Connection {
                error: Some(error.to_owned()),
                flag_sent: true,
                ..Connection::default()
            };
            let (_, verdict) = judge(&over("TLSv1_3"), &failed, &failed);
            assert_eq!(verdict, Verdict::NotSupported, "{error}");
        }
    }

    #[test]
    fn a_request_under_a_psk_misbehaves() {
        let mut second = asked(over("TLSv1_3"), true);
        second.resumed = true;
        let (findings, verdict) = judge(&over("TLSv1_3"), &asked(over("TLSv1_3"), true), &second);
        assert_eq!(verdict, Verdict::Misbehaves);
        assert!(findings.iter().any(|f| f.contains("RCA-11")));
    }

    /// Only an HTTP/1.x status line with the status 400 reads as one.
    #[test]
    fn only_a_400_status_line_is_a_bad_request() {
        for (line, bad) in [
            ("HTTP/1.1 400 Bad Request", true),
            ("HTTP/1.0 400", true),
            ("HTTP/1.1 200 OK", false),
            ("HTTP/1.1 4000 x", false),
            ("HTTP/2 SETTINGS received", false),
            ("", false),
        ] {
            assert_eq!(is_bad_request(line), bad, "{line:?}");
        }
    }
}
