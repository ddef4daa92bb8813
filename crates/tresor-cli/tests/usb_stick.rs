//! Drives, on a simulated USB stick (see `usb_stick.sh`): listed as removable beside the
//! fixed disk, a key generated on it opens after it is unmounted and mounted again, and a
//! read-only or full stick gets its own clear error and loses nothing.
//!
//! Needs root (loop devices, mount namespaces), as CI has; it fails rather than skips
//! without it, so a green run always means the stick was really simulated.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::Command;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn json(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&read(dir, name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn simulated_usb_stick() {
    let out = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/usb_stick.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_tresor"))
        .arg(out.path())
        .status()
        .expect("run usb_stick.sh");
    assert!(
        status.success(),
        "usb_stick.sh failed (it needs root, losetup, unshare, mkfs.ext4)"
    );
    let o = out.path();
    let mount = read(o, "mount_path").trim().to_owned();

    // Listed as removable, with its label; the fixed disk beside it is not removable.
    let media = json(o, "media.json");
    let drives = media["drives"].as_array().unwrap();
    let stick = drives
        .iter()
        .find(|d| d["mount_path"] == mount.as_str())
        .expect("the stick is listed");
    assert_eq!(stick["removable"], true);
    assert_eq!(stick["label"], "TRESORKEY");
    assert!(stick["free_bytes"].as_u64().unwrap() > 0);
    let root = drives
        .iter()
        .find(|d| d["mount_path"] == "/")
        .expect("the fixed disk is listed");
    assert_eq!(root["removable"], false);
    assert_eq!(
        drives[0]["mount_path"],
        mount.as_str(),
        "removable drives come first"
    );

    // The key survives unmount and mount.
    let generated = json(o, "generate.json");
    let checked = json(o, "check.json");
    assert!(generated["key_path"].as_str().unwrap().starts_with(&mount));
    assert_eq!(generated["fingerprint"], checked["fingerprint"]);

    // Read-only: exit code for key/drive problems and a message that says so.
    assert_eq!(read(o, "readonly.code").trim(), "4");
    assert!(
        read(o, "readonly.err").contains("read-only"),
        "{}",
        read(o, "readonly.err")
    );

    // Full: its own message, and the existing key still opens.
    assert_eq!(read(o, "full.code").trim(), "4");
    assert!(
        read(o, "full.err").contains("is full"),
        "{}",
        read(o, "full.err")
    );
    assert_eq!(
        json(o, "check_after_full.json")["fingerprint"],
        generated["fingerprint"]
    );
}
