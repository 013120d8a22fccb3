//! What one client address holds at once, counted so that no single
//! address can take what everyone shares: [`Serve::max_connections_per_client`]
//! counts connections with it, and a proxy can count its upstream
//! exchanges per client the same way.
//!
//! A count is per IPv4 address, or per IPv6 /64 (one host is commonly given
//! a whole /64 and can pick any address in it); an IPv4-mapped IPv6 address
//! is its IPv4 address.
//!
//! [`Serve::max_connections_per_client`]: crate::Serve::max_connections_per_client

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// What each client address holds (connections, exchanges: whatever the
/// owner counts), and how many it may.
///
/// ```
/// use rustls_req_client_auth::ClientSlots;
///
/// let slots = ClientSlots::new(2);
/// let client = "2001:db8::1".parse().expect("an address");
/// let first = slots.take(client).expect("within the limit");
/// let _second = slots.take(client).expect("within the limit");
/// // Another address in the same /64 is the same client.
/// assert!(slots.take("2001:db8::2".parse().expect("an address")).is_none());
/// drop(first); // the slot comes back
/// assert!(slots.take(client).is_some());
/// ```
#[derive(Debug)]
pub struct ClientSlots {
    max: usize,
    held: Mutex<HashMap<ClientKey, usize>>,
}

/// What a client is counted by: an IPv4 address, or the /64 an IPv6
/// address is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ClientKey(u128);

impl ClientKey {
    fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => Self(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(u128::from(u32::from(v4))),
                None => Self(u128::from(v6) & !u128::from(u64::MAX)),
            },
        }
    }
}

/// One slot of one client address; dropping it gives the slot back.
#[derive(Debug)]
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    key: ClientKey,
}

impl ClientSlots {
    /// At most `max` slots per client address at once (at least one: with
    /// none, every client would be refused).
    #[must_use]
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            held: Mutex::default(),
        })
    }

    /// How many slots a client address may hold at once.
    #[must_use]
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for `client`, or `None` if it holds all it may.
    #[must_use]
    pub fn take(self: &Arc<Self>, client: IpAddr) -> Option<ClientSlot> {
        let key = ClientKey::of(client);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            slots: Arc::clone(self),
            key,
        })
    }

    /// How many slots `client` holds.
    #[must_use]
    pub fn held_by(&self, client: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&ClientKey::of(client)).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_and_no_more_and_gets_it_back() {
        let slots = ClientSlots::new(2);
        let one: IpAddr = "192.0.2.1".parse().expect("address");
        let other: IpAddr = "192.0.2.2".parse().expect("address");
        let first = slots.take(one).expect("first");
        let second = slots.take(one).expect("second");
        assert!(slots.take(one).is_none());
        assert!(slots.take(other).is_some(), "another address has its own");
        drop(first);
        let third = slots.take(one).expect("given back");
        drop((second, third));
        assert_eq!(slots.held_by(one), 0);
        assert!(slots.held.lock().expect("lock").is_empty(), "no entry left");
    }

    #[test]
    fn ipv6_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let slots = ClientSlots::new(1);
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("address");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("address");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        let held = slots.take(a).expect("first");
        assert!(slots.take(b).is_none(), "same /64");
        assert!(slots.take(c).is_some(), "another /64");
        drop(held);
        let v4: IpAddr = "192.0.2.7".parse().expect("address");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("address");
        let held = slots.take(v4).expect("v4");
        assert!(slots.take(mapped).is_none(), "mapped is the same client");
        drop(held);
    }
}
