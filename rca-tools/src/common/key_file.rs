//! Private keys on disk: a key file that other users can read gives them the
//! identity it stands for, so loading one says so, as ssh does for an
//! unprotected key. A warning, not a refusal: the file's owner decides.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Warns when the key file at `path` (`what`, for the message) can be read
/// by users other than its owner and group: its mode gives others read
/// access. Files that cannot be inspected are left to the read that
/// follows.
pub fn warn_if_others_can_read(path: &Path, what: &str) {
    if let Some(mode) = others_can_read(path) {
        log::warn!(
            "{what} {} can be read by every user on this machine (mode {mode:04o}), who can then act with it: \
             chmod 600 {0}",
            path.display()
        );
    }
}

/// The file's mode, if it lets others read the file.
fn others_can_read(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o004 != 0).then_some(mode)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::others_can_read;

    #[test]
    fn only_a_mode_that_lets_others_read_is_reported() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "key").expect("write");
        for (mode, reported) in [(0o600, false), (0o640, false), (0o644, true), (0o604, true)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            assert_eq!(others_can_read(&path).is_some(), reported, "{mode:o}");
        }
        assert!(others_can_read(&dir.path().join("missing")).is_none());
    }
}
