//! The client library's token layer against a real PKCS#11 token (SoftHSM2), in-process:
//! what the token lets out, and each fault with its own error and nothing changed.
//!
//! SoftHSM2 reads its configuration (`SOFTHSM2_CONF`) when the module is initialised, once
//! per process, and this crate may not set environment variables (no unsafe code): so the
//! test runs itself again as a child process with the configuration of a fresh token.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::SystemTime;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use tresor_client::token::{TokenError, TokenModule, TokenStore};
use tresor_core::login::Login;
use tresor_core::payment;
use tresor_core::pki::{self, DEFAULT_CLIENT_VALIDITY};
use tresor_core::signer::KeySigner as _;
use tresor_core::testkit::TestBank;
use tresor_tests::{SOFTHSM_MODULE, SoftHsm};

const LABEL: &str = "Fault token";
const PIN: &str = "112233";
const CHILD: &str = "TRESOR_TOKEN_FAULTS_CHILD";

#[test]
fn token_faults() {
    if std::env::var_os(CHILD).is_some() {
        return in_child();
    }
    let hsm = SoftHsm::new(LABEL, PIN);
    let out = hsm
        .command(std::env::current_exe().unwrap().to_str().unwrap())
        .args(["--exact", "token_faults", "--nocapture", "--test-threads=1"])
        .env(CHILD, hsm.token_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn in_child() {
    let token_dir = std::path::PathBuf::from(std::env::var_os(CHILD).unwrap());
    let module = TokenModule::load(Path::new(SOFTHSM_MODULE)).unwrap();
    let bank = TestBank::new("Bank");
    let olena = Login::new("olena").unwrap();
    let store = TokenStore::open(module.clone(), LABEL, &olena).unwrap();

    // A wrong PIN is its own error, with what the token says of the tries left (SoftHSM2
    // raises CKF_USER_PIN_COUNT_LOW after a failure, and never locks).
    assert_eq!(
        store.check_pin(&"000000".into()).unwrap_err(),
        TokenError::WrongPin {
            tries_left: Some(2)
        }
    );
    // No key yet.
    assert!(matches!(
        store.unlock_current(&PIN.into()).unwrap_err(),
        TokenError::NoKeyForLogin { .. }
    ));

    // A key generated on the token; its request is signed there and verifies.
    let pending = store.create_first_key(&PIN.into()).unwrap();
    let csr = pki::verify_csr(&pending.csr_der).unwrap();
    assert_eq!(csr.login(), &olena);
    let now = SystemTime::now();
    let cert = bank
        .ca
        .issue_client_certificate(&csr, &olena, now, DEFAULT_CLIENT_VALIDITY)
        .unwrap();
    // Without its certificate the key is pending, and says so.
    assert!(matches!(
        store.unlock_current(&PIN.into()).unwrap_err(),
        TokenError::CertificateMissing(_)
    ));
    // A certificate for another key is refused; the pending key is kept.
    let other = bank.client("olena").cert;
    assert_eq!(
        store
            .commit_certificate(&PIN.into(), &pending, &other)
            .unwrap_err(),
        TokenError::CertificateForAnotherKey
    );
    store
        .commit_certificate(&PIN.into(), &pending, &cert)
        .unwrap();
    assert!(matches!(
        store.create_first_key(&PIN.into()).unwrap_err(),
        TokenError::KeyExists(_)
    ));

    // The key signs orders that verify against its certificate.
    let key = store.unlock_current(&PIN.into()).unwrap();
    assert_eq!(key.generation, 1);
    let order = payment::PaymentOrder {
        payer_iban: "UA213223130000026007233566001".into(),
        payee_name: "Supplier Ltd".into(),
        payee_tax_code: "12345678".into(),
        payee_iban: "UA903052992990004149123456789".into(),
        amount: 25_000,
        currency: "UAH".into(),
        purpose: "Invoice 42".into(),
    };
    let signature = payment::sign_with(key.signer.as_ref(), 7, 1, &order).unwrap();
    payment::verify(key.certificate.as_ref().unwrap(), 7, 1, &order, &signature).unwrap();
    assert_eq!(
        key.signer.public_key(),
        *csr.public_key(),
        "the signer is the certified key"
    );

    // The token refuses to hand out the private key's value. (A second context on the same
    // module shares its initialisation.)
    {
        let ctx = Pkcs11::new(SOFTHSM_MODULE).unwrap();
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("{e}"),
        }
        let slot = ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| ctx.get_token_info(*s).unwrap().label() == LABEL)
            .unwrap();
        let session = ctx.open_rw_session(slot).unwrap();
        session
            .login(UserType::User, Some(&PIN.to_string().into()))
            .or_else(|e| match e {
                P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _) => Ok(()),
                e => Err(e),
            })
            .unwrap();
        let private = session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .unwrap();
        assert_eq!(private.len(), 1);
        let attrs = session
            .get_attributes(
                private[0],
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                ],
            )
            .unwrap();
        assert_eq!(
            attrs,
            [
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::NeverExtractable(true)
            ]
        );
        let value = session.get_attributes(private[0], &[AttributeType::Value]);
        assert!(
            !matches!(value.as_deref(), Ok([Attribute::Value(v)]) if !v.is_empty()),
            "the private key's value came out: {value:?}"
        );
        // Nor wrapped under a key of one's own, PKCS#11's way of exporting a key.
        let wrapping = session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(false),
                    Attribute::ValueLen(32.into()),
                    Attribute::Wrap(true),
                    Attribute::Extractable(true),
                ],
            )
            .unwrap();
        let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, wrapping, private[0]);
        assert!(
            matches!(wrapped, Err(P11Error::Pkcs11(RvError::KeyUnextractable, _))),
            "the private key was wrapped out: {wrapped:?}"
        );
    }

    // A token with olena's key is not petro's.
    let petro = TokenStore::open(module.clone(), LABEL, &Login::new("petro").unwrap()).unwrap();
    assert_eq!(
        petro.unlock_current(&PIN.into()).unwrap_err(),
        TokenError::NoKeyForLogin {
            login: "petro".into(),
            token: LABEL.into()
        }
    );

    // Tokens come and go while the module stays loaded: a token that appears in the module's
    // slot list (initialised here through a second context, as SoftHSM2 shows new tokens only
    // to the process that made them) is in the very next listing, and one whose folder goes
    // away (pulled out) is gone from it: nothing is cached between the app's two-second polls.
    let listed = |label: &str| module.tokens().unwrap().iter().any(|t| t.label == label);
    let folders = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&token_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    };
    assert!(!listed("Plugged in"));
    let before = folders();
    {
        let ctx = Pkcs11::new(SOFTHSM_MODULE).unwrap();
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("{e}"),
        }
        let free = ctx
            .get_all_slots()
            .unwrap()
            .into_iter()
            .find(|s| ctx.get_token_info(*s).is_ok_and(|t| !t.token_initialized()))
            .unwrap();
        ctx.init_token(free, &"so-pin-1111".to_string().into(), "Plugged in")
            .unwrap();
    }
    assert!(listed("Plugged in"), "a token plugged in is listed");
    let plugged = folders().into_iter().find(|f| !before.contains(f)).unwrap();
    std::fs::remove_dir_all(&plugged).unwrap();
    assert!(!listed("Plugged in"), "a token pulled out is not listed");

    // The token goes away between unlocking and signing: its own error.
    let moved = token_dir.with_extension("pulled");
    std::fs::rename(&token_dir, &moved).unwrap();
    let err = key
        .signer
        .sign_message(b"after the token was pulled")
        .unwrap_err();
    std::fs::rename(&moved, &token_dir).unwrap();
    assert_eq!(err, TokenError::Removed, "{err}");
}
