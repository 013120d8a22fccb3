//! What a session ticket remembers for this crate: which trust path
//! authenticated the client (RCA-11), so a resumed connection reports the same.

use crate::server::AuthPath;

/// Format version of the ticket data; data of another version is not used.
const VERSION: u8 = 1;

pub(crate) fn encode(path: AuthPath) -> Vec<u8> {
    let path = match path {
        AuthPath::None => 0,
        AuthPath::Flag => 1,
        AuthPath::Normal => 2,
    };
    vec![VERSION, path]
}

/// `None` for data this crate did not write; such a ticket is refused.
pub(crate) fn decode(data: &[u8]) -> Option<AuthPath> {
    match data {
        [VERSION, 0] => Some(AuthPath::None),
        [VERSION, 1] => Some(AuthPath::Flag),
        [VERSION, 2] => Some(AuthPath::Normal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for path in [AuthPath::None, AuthPath::Flag, AuthPath::Normal] {
            assert_eq!(decode(&encode(path)), Some(path));
        }
    }

    #[test]
    fn rca11_foreign_or_damaged_data_is_not_trusted() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[2, 1]), None);
        assert_eq!(decode(&[1, 3]), None);
        assert_eq!(decode(&[1, 1, 0]), None);
    }
}
