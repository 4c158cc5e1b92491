#![no_main]
//! What a directory grant says: its rights (`FsRights::parse`) and its guest path
//! (`GuestPath::parse`), on arbitrary text.
//!
//! Properties, besides never panicking:
//! - parsed rights hold no bit beyond the known operations, are never empty (no
//!   spelling grants nothing by accident), and print as text that parses back to
//!   the same rights;
//! - a guest path parses to an absolute path with no `.`, `..` or empty component,
//!   which parses back to itself, and lies within itself.

use libfuzzer_sys::fuzz_target;
use nanoproc_caps::{FsRights, GuestPath};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(rights) = FsRights::parse(text) {
        assert!(
            FsRights::READ_WRITE.contains(rights),
            "{text:?} sets unknown bits {:#x}",
            rights.bits()
        );
        assert_ne!(
            rights,
            FsRights::NONE,
            "{text:?} parses to no rights at all"
        );
        let shown = rights.to_string();
        assert_eq!(
            FsRights::parse(&shown),
            Some(rights),
            "{text:?} shows as {shown:?}"
        );
    }
    if let Ok(path) = GuestPath::parse(text) {
        let shown = path.as_str();
        assert!(shown.starts_with('/'), "{text:?} normalises to {shown:?}");
        assert!(
            shown == "/" || shown[1..].split('/').all(|c| !matches!(c, "" | "." | "..")),
            "{text:?} normalises to {shown:?}"
        );
        assert_eq!(GuestPath::parse(shown).as_ref(), Ok(&path));
        assert_eq!(path.strip_prefix(&path), Some(Vec::new()));
    }
});
