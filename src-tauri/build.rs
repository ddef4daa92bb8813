//! Tauri's build step, with an app manifest: each command gets an `allow-…` permission, and
//! `capabilities/main.json` grants the window exactly these.

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(tresor_app_commands::ALL)),
    )
    .expect("tauri build step");
}

/// The app's commands, as in `src/commands.rs` (a test checks the two lists agree).
mod tresor_app_commands {
    include!("src/command_names.rs");
}
