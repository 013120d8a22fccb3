//! Whether an address a tool is told to send to is one of its own
//! listeners: a route or an upstream back to itself, whose every request
//! would come back to it (or reach its admin endpoints), which `rca-proxy`
//! and `rca-connect` both refuse at start.

use std::net::{IpAddr, SocketAddr};

/// Whether `host` and `port`, as written in a URL (a name or an IP
/// address, IPv6 in brackets or not), reach `listener`: its port, and its
/// IP address, or a local one (`localhost`, a loopback or unspecified
/// address) where the listener takes loopback (a loopback or wildcard
/// address). Told by the address as written: a name other than
/// `localhost` is not resolved, so a wildcard listener does not take it.
#[must_use]
pub fn reaches(host: &str, port: u16, listener: SocketAddr) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let address: Option<IpAddr> = host.parse().ok();
    let local = host.eq_ignore_ascii_case("localhost")
        || address.is_some_and(|address| address.is_loopback() || address.is_unspecified());
    port == listener.port()
        && (address == Some(listener.ip())
            || (local && (listener.ip().is_loopback() || listener.ip().is_unspecified())))
}

#[cfg(test)]
mod tests {
    use super::reaches;

    #[test]
    fn only_local_names_reach_a_wildcard_listener() {
        let wildcard = "0.0.0.0:8443".parse().expect("address");
        let loopback = "127.0.0.1:8443".parse().expect("address");
        assert!(reaches("localhost", 8443, wildcard));
        assert!(reaches("127.0.0.1", 8443, wildcard));
        assert!(reaches("LOCALHOST", 8443, loopback));
        assert!(!reaches("api.partner.example", 8443, wildcard));
        assert!(!reaches("10.0.0.7", 8443, loopback));
        assert!(!reaches("localhost", 8444, loopback));
        assert!(reaches(
            "[::1]",
            8443,
            "[::1]:8443".parse().expect("address")
        ));
    }
}
