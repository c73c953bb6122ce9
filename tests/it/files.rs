//! A city's own files through the `safegrid` binary, as its GIS officer runs them: imports that
//! must refuse clearly and completely, exports that must re-import to the same layer, and what
//! a user error looks like on the terminal.

use crate::support::process::BIN;
use std::process::Command;

crate::test!(a_user_error_is_its_causes_without_a_backtrace_even_with_rust_backtrace_set);
fn a_user_error_is_its_causes_without_a_backtrace_even_with_rust_backtrace_set() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("city.db").display());
    let out = Command::new(BIN)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .args(["--database-url", &url, "import", "--layer", "incidents", "--file"])
        .arg(dir.path().join("missing.geojson"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: ") && stderr.contains("missing.geojson"), "{stderr}");
    assert!(!stderr.to_ascii_lowercase().contains("backtrace"), "{stderr}");
    assert!(stderr.lines().count() < 6, "{stderr}");
}
