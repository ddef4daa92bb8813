//! Tresor's desktop app: a Tauri v2 shell over `tresor-client`. The window (ui/) calls typed
//! commands ([`commands`]); their TypeScript bindings are generated from these Rust types into
//! `ui/src/bindings.ts`, and a test keeps the committed file current.

pub mod admin;
pub mod commands;
pub mod error;
pub mod profile;
pub mod remember;
pub mod state;
pub mod statements;

/// The command names, shared with the build script's app manifest.
pub mod command_names {
    include!("command_names.rs");
}

use specta_typescript::Typescript;
use tauri_specta::{Builder, collect_commands};

/// Where the bindings are committed, relative to this crate.
pub const BINDINGS: &str = "../ui/src/bindings.ts";

/// The commands and their types, for the invoke handler and the bindings.
pub fn specta_builder() -> Builder<tauri::Wry> {
    Builder::<tauri::Wry>::new()
        .commands(collect_commands![
            commands::app_start,
            commands::refresh_bank_info,
            commands::remembered,
            commands::save_settings,
            commands::forget_remembered,
            commands::list_drives,
            commands::list_tokens,
            commands::fixed_disk_warning,
            commands::pick_folder,
            commands::check_new_password,
            commands::check_new_key_password,
            commands::login_with_key,
            commands::login_with_otp,
            commands::first_login,
            commands::change_password,
            commands::overview,
            commands::session_info,
            commands::renew_key,
            commands::recover_key,
            commands::totp_enroll,
            commands::totp_confirm,
            commands::list_orders,
            commands::prepare_order,
            commands::signing_summary,
            commands::sign_order,
            commands::send_order,
            commands::save_key_letter,
            commands::block_key,
            commands::logout,
            profile::forgot_password,
            profile::reset_password,
            profile::profile,
            profile::set_email,
            profile::confirm_email,
            profile::set_preferences,
            profile::confirm_login,
            statements::statement_page,
            statements::export_statement,
            statements::signature_queue,
            statements::batch_summary,
            statements::sign_batch,
            statements::pick_orders_file,
            statements::import_orders,
            statements::list_templates,
            statements::save_template,
            statements::list_counterparties,
            statements::save_counterparty,
            admin::admin_find_users,
            admin::admin_show_user,
            admin::admin_unlock,
            admin::admin_suspend,
            admin::admin_revoke,
            admin::admin_activate,
            admin::admin_ask_password,
            admin::admin_requests,
            admin::admin_approve,
            admin::admin_reject,
            admin::admin_audit,
            admin::admin_audit_verify,
            admin::copy_secret,
        ])
        // Amounts (minor units), ids and Unix times stay far below 2^53.
        .dangerously_cast_bigints_to_number()
        // One TypeScript type per Rust type, whichever way it travels.
        .disable_serde_phases()
}

/// Writes the TypeScript bindings to `path`.
pub fn export_bindings(path: &std::path::Path) -> Result<(), String> {
    specta_builder()
        .export(
            Typescript::default().header("// Generated from src-tauri by tauri-specta: do not edit.\n// Regenerate with `TRESOR_UPDATE_BINDINGS=1 cargo test -p tresor-app bindings`.\n"),
            path,
        )
        .map_err(|e| e.to_string())
}

/// Runs the app.
pub fn run() -> Result<(), tauri::Error> {
    let builder = specta_builder();
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .manage(state::AppState::default())
        .invoke_handler(builder.invoke_handler())
        .setup(|app| {
            #[cfg(target_os = "linux")]
            software_rendering(app)?;
            let _ = app;
            Ok(())
        })
        .run(tauri::generate_context!())
}

/// Forms and tables need no GPU compositing; without it WebKitGTK does not load a GL stack
/// (Mesa, LLVM) into its web process, which saves about 80 MiB (docs/PERFORMANCE.md).
#[cfg(target_os = "linux")]
fn software_rendering(app: &tauri::App) -> tauri::Result<()> {
    use tauri::Manager as _;
    use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt as _, WebViewExt as _};
    if let Some(window) = app.get_webview_window("main") {
        window.with_webview(|webview| {
            if let Some(settings) = webview.inner().settings() {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn bindings_are_current() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join(super::BINDINGS);
        if std::env::var_os("TRESOR_UPDATE_BINDINGS").is_some() {
            super::export_bindings(&committed).expect("export");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = dir.path().join("bindings.ts");
        super::export_bindings(&fresh).expect("export");
        let fresh = std::fs::read_to_string(fresh).expect("fresh");
        let committed = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            fresh == committed,
            "ui/src/bindings.ts is out of date: run `TRESOR_UPDATE_BINDINGS=1 cargo test -p tresor-app bindings`"
        );
    }

    #[test]
    fn every_command_is_in_the_app_manifest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bindings.ts");
        super::export_bindings(&path).expect("export");
        let ts = std::fs::read_to_string(path).expect("read");
        let invoked: Vec<&str> = ts
            .split("TAURI_INVOKE(\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        assert_eq!(invoked, super::command_names::ALL);
    }
}
