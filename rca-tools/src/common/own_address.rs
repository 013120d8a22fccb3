//! Whether an address a tool is told to send to is one of its own
//! listeners: a route or an upstream back to itself, whose every request
//! would come back to it (or reach its admin endpoints), which `rca-proxy`
//! and `rca-connect` both refuse at start.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `host` and `port`, as written in a URL (`localhost` or an IP
/// address, IPv6 in brackets or not), reach `listener`: its port, and an
/// address it takes. A listener on an address takes only that address; a
/// wildcard one takes the loopback addresses of its family (`::` takes
/// IPv4's too, as Linux's dual-stack sockets do); connecting to an
/// unspecified address reaches the loopback. Other names are not resolved
/// and aliases such as `127.1` are not read, so this is the check of the
/// address as written, not a proof.
#[must_use]
pub fn reaches(host: &str, port: u16, listener: SocketAddr) -> bool {
    if port != listener.port() {
        return false;
    }
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.');
    let targets: Vec<IpAddr> = if host.eq_ignore_ascii_case("localhost") {
        vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
    } else if let Ok(address) = host.parse::<IpAddr>() {
        vec![address]
    } else {
        return false;
    };
    targets
        .into_iter()
        .any(|target| takes(listener.ip(), target))
}

/// Whether a listener on `listener` takes a connection to `target`.
fn takes(listener: IpAddr, target: IpAddr) -> bool {
    let target = match target.to_canonical() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    match listener.to_canonical() {
        IpAddr::V4(any) if any.is_unspecified() => target.is_ipv4() && target.is_loopback(),
        IpAddr::V6(any) if any.is_unspecified() => target.is_loopback(),
        exact => exact == target,
    }
}

#[cfg(test)]
mod tests {
    use super::reaches;

    fn at(text: &str) -> std::net::SocketAddr {
        text.parse().expect("address")
    }

    #[test]
    fn an_address_as_written_reaches_the_listeners_that_take_it() {
        assert!(reaches("localhost", 8443, at("0.0.0.0:8443")));
        assert!(reaches("LocalHost.", 8443, at("127.0.0.1:8443")));
        assert!(reaches("127.0.0.1", 8443, at("0.0.0.0:8443")));
        assert!(reaches("127.0.0.2", 8443, at("0.0.0.0:8443")));
        assert!(reaches("[::ffff:127.0.0.1]", 8443, at("127.0.0.1:8443")));
        assert!(reaches("0.0.0.0", 8443, at("127.0.0.1:8443")));
        assert!(reaches("127.0.0.1", 8443, at("[::]:8443")));
        assert!(reaches("[::1]", 8443, at("[::1]:8443")));
        // Found by an outside trial: these were refused.
        assert!(!reaches("127.0.0.2", 8443, at("127.0.0.1:8443")));
        assert!(!reaches("[::1]", 8443, at("127.0.0.1:8443")));
        assert!(!reaches("[::1]", 8443, at("0.0.0.0:8443")));
        assert!(!reaches("localhost", 8443, at("127.0.0.2:8443")));
        assert!(!reaches("api.partner.example", 8443, at("0.0.0.0:8443")));
        assert!(!reaches("10.0.0.7", 8443, at("127.0.0.1:8443")));
        assert!(!reaches("localhost", 8444, at("127.0.0.1:8443")));
    }
}
