//! The bank's name and helpdesk, as its users see them before any login: `tresor bank-info`
//! asks the bank (anonymous session, no key) and caches the answer in the settings file, and
//! prints the cache, saying so, when the bank is down.

use serde_json::Value;

use crate::support::{Bank, Tresor};

const BANK: &str = "[bank]\nname = \"Банк Приклад\"\nphone = \"+380 44 000 00 00\"\n\
                    email = \"help@bank.example\"\nhours = \"Пн–Пт 9:00–18:00\"\n\
                    website = \"https://bank.example\"\n";

fn assert_helpdesk(bank: &Value) {
    assert_eq!(bank["name"], "Банк Приклад");
    assert_eq!(bank["phone"], "+380 44 000 00 00");
    assert_eq!(bank["email"], "help@bank.example");
    assert_eq!(bank["hours"], "Пн–Пт 9:00–18:00");
    assert_eq!(bank["website"], "https://bank.example");
}

#[test]
fn bank_info_from_the_bank_then_from_the_cache_when_it_is_down() {
    // One wrong login blocks the address: the quickest way to an error that sends the user
    // to the bank.
    let mut bank = Bank::start_with("ip_max_points = 1", BANK, Vec::new());
    let home = tempfile::tempdir().unwrap();
    let settings = home.path().join("client.toml");
    let cli = Tresor::new(&bank, "nobody", home.path());

    let bank_info = || {
        cli.run(&["bank-info"])
            .env("TRESOR_CLIENT_CONFIG", &settings)
            .json_ok()
    };

    // Before `setup` there is no settings file to cache into: the answer is still shown.
    let up = bank_info();
    assert_helpdesk(&up["bank"]);
    assert_eq!(up["from_cache"], false);

    cli.run(&["setup"])
        .env("TRESOR_CLIENT_CONFIG", &settings)
        .json_ok();
    let up = bank_info();
    assert_helpdesk(&up["bank"]);
    assert_eq!(up["from_cache"], false);
    let saved = std::fs::read_to_string(&settings).unwrap();
    assert!(saved.contains("+380 44 000 00 00"), "{saved}");

    // An error whose way out is the bank names its helpdesk, from the cache.
    let blocked = (0..4)
        .map(|i| {
            cli.run(&["login", "--otp"])
                .env("TRESOR_CLIENT_CONFIG", &settings)
                .secret("TRESOR_PASSWORD", &format!("wrong password {i}"))
                .secret("TRESOR_OTP", "000000")
                .outcome()
        })
        .find(|(code, _)| *code == Some(5))
        .expect("the address is blocked after a few wrong logins");
    assert!(
        blocked.1.contains(
            "the helpdesk of Банк Приклад: +380 44 000 00 00, help@bank.example (Пн–Пт 9:00–18:00)"
        ),
        "{}",
        blocked.1
    );
    // An error the bank cannot help with (here: it cannot be reached) names no helpdesk.
    let other = tempfile::tempdir().unwrap();
    let (code, stderr) = Tresor::new(&bank, "nobody", other.path())
        .run(&["login", "--otp"])
        .env("TRESOR_CLIENT_CONFIG", &settings)
        .env("TRESOR_SERVER", "https://127.0.0.1:9")
        .secret("TRESOR_PASSWORD", "pw")
        .secret("TRESOR_OTP", "000000")
        .outcome();
    assert_eq!(code, Some(6), "{stderr}");
    assert!(!stderr.contains("helpdesk"), "{stderr}");

    bank.stop();
    let down = bank_info();
    assert_helpdesk(&down["bank"]);
    assert_eq!(down["from_cache"], true);
    assert_eq!(down["fetched"], up["fetched"]);

    // The bank down and nothing saved: a network error (exit 6) that says so, not an empty
    // helpdesk.
    let elsewhere = home.path().join("other.toml");
    cli.run(&["bank-info"])
        .env("TRESOR_CLIENT_CONFIG", &elsewhere)
        .fails_with(6, "never saved");
}
