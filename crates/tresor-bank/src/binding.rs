//! The database is untrusted storage (docs/THREAT_MODEL.md): whatever in it grants authority is
//! bound to a key from the data folder, so that a row written by someone holding only the
//! database is refused, never obeyed.
//!
//! * password and emergency-password hashes carry an HMAC over the user's login, the
//!   password's kind or expiry and the hash: a hash of the attacker's own password, or a
//!   temporary password made permanent, does not verify;
//! * TOTP secrets are sealed with AES-256-GCM, the login in the AAD: unreadable in a dump, and
//!   not replaceable;
//! * a session's login (user and stage) and its seq carry HMACs with the session id: a session
//!   handed to another user, promoted to another stage, or rolled back to an earlier seq is
//!   refused;
//! * a certificate's activation state (key letters) carries an HMAC over its serial: a
//!   certificate waiting for its letter is not let in by editing the state;
//! * an admin's roles carry an HMAC over the user and login: a user made an admin, or an
//!   admin given a role, in the database alone is not obeyed;
//! * a ledger movement carries an HMAC over what it says and the tag of the account's
//!   movement before it: the account's history is a chain no one without the key can edit,
//!   extend or cut in the middle;
//! * a four-eyes request carries an HMAC over what was asked, by whom, until when; its
//!   decision another over the request's, the outcome, the decider and the time.
//!
//! Every input is length-prefixed under a label of its own, so that no value of one kind can
//! stand in for another.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};
use zeroize::Zeroizing;

use crate::data::BankSecrets;
use crate::storage::ledger::MovementContent;
use crate::storage::{Activation, PasswordKind, SessionLogin, StoredEnum as _};

/// Prefix of a bound password hash: `b1:<64 hex digits of HMAC><PHC string>`.
const BOUND: &str = "b1:";
const TAG_HEX: usize = 64;

/// The bank's binding keys.
pub struct Binding {
    mac: hmac::Key,
    vault: Vault,
}

/// AES-256-GCM with a random nonce per value, stored as nonce ‖ ciphertext ‖ tag: what the
/// bank seals in its database (session state, TOTP secrets), each under its own key.
pub struct Vault(LessSafeKey);

impl Vault {
    /// A vault under `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        // A 32-byte key is what AES-256-GCM takes.
        #[allow(clippy::expect_used)]
        Self(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, key).expect("AES-256 key"),
        ))
    }

    /// `plain` sealed with `aad`; `None` only if the OS random number generator failed.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut buf = Zeroizing::new(plain.to_vec());
        // Sealing fails only for inputs beyond AES-GCM's limits.
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    /// What `seal` sealed with this `aad`, if it opens.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = Zeroizing::new(rest.to_vec());
        let n = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .ok()?
            .len();
        buf.truncate(n);
        Some(buf)
    }
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Binding(..)")
    }
}

impl Binding {
    /// The keys derived from the data folder's secret.
    pub fn new(secrets: &BankSecrets) -> Self {
        Self {
            mac: hmac::Key::new(hmac::HMAC_SHA256, &*secrets.binding_key),
            vault: Vault::new(&secrets.vault_key),
        }
    }

    fn message(label: &str, parts: &[&[u8]]) -> Vec<u8> {
        let mut m = Vec::with_capacity(128);
        for part in std::iter::once(label.as_bytes()).chain(parts.iter().copied()) {
            m.extend_from_slice(&(part.len() as u64).to_be_bytes());
            m.extend_from_slice(part);
        }
        m
    }

    fn tag(&self, label: &str, parts: &[&[u8]]) -> hmac::Tag {
        hmac::sign(&self.mac, &Self::message(label, parts))
    }

    fn verify(&self, label: &str, parts: &[&[u8]], tag: &[u8]) -> bool {
        hmac::verify(&self.mac, &Self::message(label, parts), tag).is_ok()
    }

    fn bind(&self, label: &str, parts: &[&[u8]], phc: &str) -> String {
        let tag = self.tag(label, parts);
        format!(
            "{BOUND}{}{phc}",
            data_encoding::HEXLOWER.encode(tag.as_ref())
        )
    }

    fn open<'a>(&self, label: &str, parts: &[&[u8]], stored: &'a str) -> Option<&'a str> {
        let rest = stored.strip_prefix(BOUND)?;
        let (tag, phc) = (rest.get(..TAG_HEX)?, rest.get(TAG_HEX..)?);
        let tag = data_encoding::HEXLOWER.decode(tag.as_bytes()).ok()?;
        let mut all = parts.to_vec();
        all.push(phc.as_bytes());
        self.verify(label, &all, &tag).then_some(phc)
    }

    /// A login password's hash as stored.
    pub fn bind_password(&self, login: &str, kind: PasswordKind, phc: &str) -> String {
        let parts: [&[u8]; 3] = [login.as_bytes(), kind.to_db().as_bytes(), phc.as_bytes()];
        self.bind("password", &parts, phc)
    }

    /// The PHC string of a stored login password, if its binding holds.
    pub fn open_password<'a>(
        &self,
        login: &str,
        kind: PasswordKind,
        stored: &'a str,
    ) -> Option<&'a str> {
        let parts: [&[u8]; 2] = [login.as_bytes(), kind.to_db().as_bytes()];
        self.open("password", &parts, stored)
    }

    /// An emergency password's hash as stored.
    pub fn bind_emergency(&self, login: &str, expires: i64, phc: &str) -> String {
        let expires = expires.to_be_bytes();
        let parts: [&[u8]; 3] = [login.as_bytes(), &expires, phc.as_bytes()];
        self.bind("emergency", &parts, phc)
    }

    /// The PHC string of a stored emergency password, if its binding holds.
    pub fn open_emergency<'a>(
        &self,
        login: &str,
        expires: i64,
        stored: &'a str,
    ) -> Option<&'a str> {
        let expires = expires.to_be_bytes();
        let parts: [&[u8]; 2] = [login.as_bytes(), &expires];
        self.open("emergency", &parts, stored)
    }

    /// Whether a stored hash is bound at all (rows of schema versions before 3 are not).
    pub fn is_bound(stored: &str) -> bool {
        stored.starts_with(BOUND)
    }

    /// A TOTP secret sealed for storage.
    pub fn seal_totp(&self, login: &str, secret: &[u8]) -> Vec<u8> {
        // Sealing fails only if the OS random number generator does.
        #[allow(clippy::expect_used)]
        self.vault
            .seal(&totp_aad(login), secret)
            .expect("the operating system's random number generator")
    }

    /// A sealed TOTP secret, if it opens under this login.
    pub fn open_totp(&self, login: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.vault.open(&totp_aad(login), sealed)
    }

    /// The MAC over a session's login (`None`: not logged in).
    pub fn session_login_tag(&self, session: &str, login: Option<&SessionLogin>) -> Vec<u8> {
        self.tag("session login", &login_parts(session, login).as_refs())
            .as_ref()
            .to_vec()
    }

    /// Whether a session's stored login carries its MAC.
    pub fn session_login_holds(
        &self,
        session: &str,
        login: Option<&SessionLogin>,
        tag: &[u8],
    ) -> bool {
        self.verify("session login", &login_parts(session, login).as_refs(), tag)
    }

    /// The MAC over a session's next seq, last activity and holder (the instance whose memory
    /// holds them; `None` while the row does).
    pub fn session_seq_tag(
        &self,
        session: &str,
        next_seq: i64,
        last_activity: i64,
        holder: Option<&str>,
    ) -> Vec<u8> {
        self.tag(
            "session seq",
            &seq_parts(session, next_seq, last_activity, holder).as_refs(),
        )
        .as_ref()
        .to_vec()
    }

    /// Whether a session's stored seq, last activity and holder carry their MAC.
    pub fn session_seq_holds(
        &self,
        session: &str,
        next_seq: i64,
        last_activity: i64,
        holder: Option<&str>,
        tag: &[u8],
    ) -> bool {
        self.verify(
            "session seq",
            &seq_parts(session, next_seq, last_activity, holder).as_refs(),
            tag,
        )
    }
}

/// What a session's seq MAC covers; a holder is marked present or absent, so that no holder
/// can read as another's.
fn seq_parts(session: &str, next_seq: i64, last_activity: i64, holder: Option<&str>) -> Parts {
    Parts(vec![
        session.as_bytes().to_vec(),
        next_seq.to_be_bytes().to_vec(),
        last_activity.to_be_bytes().to_vec(),
        match holder {
            Some(h) => [b"1".as_slice(), h.as_bytes()].concat(),
            None => b"0".to_vec(),
        },
    ])
}

/// What a four-eyes request's MAC covers.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalParts<'a> {
    /// What.
    pub action: &'a str,
    /// A login or an IBAN.
    pub target: &'a str,
    /// Parameters, JSON.
    pub params: &'a str,
    /// The requesting admin's user id.
    pub requested_by: i64,
    /// When.
    pub requested_at: i64,
    /// Approvable until.
    pub expires_at: i64,
}

impl Binding {
    /// The MAC over a certificate's activation state.
    pub fn activation_tag(&self, serial: &str, state: Activation) -> Vec<u8> {
        self.tag("activation", &[serial.as_bytes(), state.to_db().as_bytes()])
            .as_ref()
            .to_vec()
    }

    /// Whether a certificate's stored activation state carries its MAC.
    pub fn activation_holds(&self, serial: &str, state: Activation, tag: &[u8]) -> bool {
        self.verify(
            "activation",
            &[serial.as_bytes(), state.to_db().as_bytes()],
            tag,
        )
    }

    fn movement_message(prev: Option<&[u8]>, m: &MovementContent) -> Vec<u8> {
        let order = m.order_id.map(i64::to_be_bytes);
        let numbers = [
            m.booked_at,
            m.value_date.days(),
            m.amount,
            m.balance_after,
            m.debits_after,
            m.credits_after,
        ]
        .map(i64::to_be_bytes);
        let mut parts: Vec<&[u8]> = vec![
            prev.unwrap_or(b"first"),
            m.iban.as_bytes(),
            m.direction.to_db().as_bytes(),
            m.kind.to_db().as_bytes(),
            m.counterparty_name.as_bytes(),
            m.counterparty_iban.as_bytes(),
            m.counterparty_tax_code.as_bytes(),
            m.purpose.as_bytes(),
            m.doc_number.as_bytes(),
            order.as_ref().map_or(b"none".as_slice(), |o| o.as_slice()),
        ];
        parts.extend(numbers.iter().map(|n| n.as_slice()));
        Self::message("movement", &parts)
    }

    /// The MAC over a movement, chained to the account's movement before it (`None` for its
    /// first).
    pub fn movement_tag(&self, prev: Option<&[u8]>, m: &MovementContent) -> Vec<u8> {
        hmac::sign(&self.mac, &Self::movement_message(prev, m))
            .as_ref()
            .to_vec()
    }

    /// Whether a stored movement carries its MAC after `prev`.
    pub fn movement_holds(&self, prev: Option<&[u8]>, m: &MovementContent, tag: &[u8]) -> bool {
        hmac::verify(&self.mac, &Self::movement_message(prev, m), tag).is_ok()
    }

    /// The MAC that makes `email` the verified address of the user `user_id`, `login`.
    pub fn email_tag(&self, user_id: i64, login: &str, email: &str) -> Vec<u8> {
        let id = user_id.to_be_bytes();
        self.tag("email", &[&id, login.as_bytes(), email.as_bytes()])
            .as_ref()
            .to_vec()
    }

    /// Whether a stored address is the user's verified one.
    pub fn email_holds(&self, user_id: i64, login: &str, email: &str, tag: &[u8]) -> bool {
        let id = user_id.to_be_bytes();
        self.verify("email", &[&id, login.as_bytes(), email.as_bytes()], tag)
    }

    /// The MAC that makes `phone` the mobile number of the user `user_id`, `login`.
    pub fn phone_tag(&self, user_id: i64, login: &str, phone: &str) -> Vec<u8> {
        let id = user_id.to_be_bytes();
        self.tag("phone", &[&id, login.as_bytes(), phone.as_bytes()])
            .as_ref()
            .to_vec()
    }

    /// Whether a stored number is the user's.
    pub fn phone_holds(&self, user_id: i64, login: &str, phone: &str, tag: &[u8]) -> bool {
        let id = user_id.to_be_bytes();
        self.verify("phone", &[&id, login.as_bytes(), phone.as_bytes()], tag)
    }

    /// The MAC under which a one-time code is kept: over the code, the user, what it is for,
    /// its target (a new address) and its expiry. The code itself is stored nowhere.
    pub fn code_tag(&self, c: &CodeFacts<'_>, code: &str) -> Vec<u8> {
        self.tag("one-time code", &c.parts(code).as_refs())
            .as_ref()
            .to_vec()
    }

    /// Whether `code` is the one kept under `tag` for these facts (in constant time).
    pub fn code_holds(&self, c: &CodeFacts<'_>, code: &str, tag: &[u8]) -> bool {
        self.verify("one-time code", &c.parts(code).as_refs(), tag)
    }

    fn roles_parts<'a>(user_id: &'a [u8; 8], login: &'a str, roles: &'a str) -> [&'a [u8]; 3] {
        [user_id, login.as_bytes(), roles.as_bytes()]
    }

    /// The MAC over an admin's roles.
    pub fn admin_roles_tag(&self, user_id: i64, login: &str, roles: &str) -> Vec<u8> {
        let id = user_id.to_be_bytes();
        self.tag("admin roles", &Self::roles_parts(&id, login, roles))
            .as_ref()
            .to_vec()
    }

    /// Whether an admin's stored roles carry their MAC.
    pub fn admin_roles_hold(&self, user_id: i64, login: &str, roles: &str, tag: &[u8]) -> bool {
        let id = user_id.to_be_bytes();
        self.verify("admin roles", &Self::roles_parts(&id, login, roles), tag)
    }

    fn approval_message(p: &ApprovalParts<'_>) -> Vec<Vec<u8>> {
        vec![
            p.action.as_bytes().to_vec(),
            p.target.as_bytes().to_vec(),
            p.params.as_bytes().to_vec(),
            p.requested_by.to_be_bytes().to_vec(),
            p.requested_at.to_be_bytes().to_vec(),
            p.expires_at.to_be_bytes().to_vec(),
        ]
    }

    /// The MAC over a four-eyes request.
    pub fn approval_tag(&self, p: &ApprovalParts<'_>) -> Vec<u8> {
        let parts = Parts(Self::approval_message(p));
        self.tag("approval", &parts.as_refs()).as_ref().to_vec()
    }

    /// Whether a stored request carries its MAC.
    pub fn approval_holds(&self, p: &ApprovalParts<'_>, tag: &[u8]) -> bool {
        let parts = Parts(Self::approval_message(p));
        self.verify("approval", &parts.as_refs(), tag)
    }

    /// The MAC over a decision on request `id` (whose MAC is `request_tag`).
    pub fn decision_tag(
        &self,
        id: i64,
        request_tag: &[u8],
        status: &str,
        decided_by: i64,
        decided_at: i64,
    ) -> Vec<u8> {
        let (id, by, at) = (
            id.to_be_bytes(),
            decided_by.to_be_bytes(),
            decided_at.to_be_bytes(),
        );
        self.tag(
            "approval decision",
            &[&id, request_tag, status.as_bytes(), &by, &at],
        )
        .as_ref()
        .to_vec()
    }

    /// Whether a stored decision carries its MAC.
    pub fn decision_holds(
        &self,
        id: i64,
        request_tag: &[u8],
        status: &str,
        decided_by: i64,
        decided_at: i64,
        tag: &[u8],
    ) -> bool {
        let (id, by, at) = (
            id.to_be_bytes(),
            decided_by.to_be_bytes(),
            decided_at.to_be_bytes(),
        );
        self.verify(
            "approval decision",
            &[&id, request_tag, status.as_bytes(), &by, &at],
            tag,
        )
    }
}

fn totp_aad(login: &str) -> Vec<u8> {
    let mut aad = b"tresor totp v1\0".to_vec();
    aad.extend_from_slice(login.as_bytes());
    aad
}

struct Parts(Vec<Vec<u8>>);

impl Parts {
    fn as_refs(&self) -> Vec<&[u8]> {
        self.0.iter().map(Vec::as_slice).collect()
    }
}

fn login_parts(session: &str, login: Option<&SessionLogin>) -> Parts {
    let mut parts = vec![session.as_bytes().to_vec()];
    if let Some(l) = login {
        parts.push(l.user_id.to_be_bytes().to_vec());
        parts.push(l.stage.to_db().as_bytes().to_vec());
    }
    Parts(parts)
}

/// What a one-time code is bound to.
pub struct CodeFacts<'a> {
    /// The user.
    pub user_id: i64,
    /// Their login.
    pub login: &'a str,
    /// What the code does (`reset`, `email`).
    pub purpose: &'a str,
    /// What it confirms: a new address, or empty.
    pub target: &'a str,
    /// Until when, Unix seconds.
    pub expires: i64,
}

impl CodeFacts<'_> {
    fn parts(&self, code: &str) -> Parts {
        Parts(vec![
            self.user_id.to_be_bytes().to_vec(),
            self.login.as_bytes().to_vec(),
            self.purpose.as_bytes().to_vec(),
            self.target.as_bytes().to_vec(),
            self.expires.to_be_bytes().to_vec(),
            code.as_bytes().to_vec(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use tresor_core::api::Stage;

    use super::*;

    fn binding(seed: u8) -> Binding {
        Binding::new(&BankSecrets::derive(&[seed; 32]))
    }

    #[test]
    fn a_bound_password_opens_only_for_its_login_kind_and_key() {
        let b = binding(1);
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let stored = b.bind_password("alice", PasswordKind::Regular, phc);
        assert_eq!(
            b.open_password("alice", PasswordKind::Regular, &stored),
            Some(phc)
        );
        let cases: [(&Binding, &str, PasswordKind, &str); 5] = [
            (&b, "mallory", PasswordKind::Regular, &stored),
            (&b, "alice", PasswordKind::Temporary, &stored),
            (&binding(2), "alice", PasswordKind::Regular, &stored),
            (&b, "alice", PasswordKind::Regular, phc),
            (
                &b,
                "alice",
                PasswordKind::Regular,
                &stored.replace("c2FsdA", "c2FsdB"),
            ),
        ];
        for (key, login, kind, stored) in cases {
            assert_eq!(
                key.open_password(login, kind, stored),
                None,
                "{login} {kind:?}"
            );
        }
    }

    #[test]
    fn an_emergency_hash_is_bound_to_its_expiry() {
        let b = binding(1);
        let stored = b.bind_emergency("alice", 100, "$argon2id$x");
        assert_eq!(b.open_emergency("alice", 100, &stored), Some("$argon2id$x"));
        assert_eq!(b.open_emergency("alice", 101, &stored), None);
        assert_eq!(b.open_emergency("bob", 100, &stored), None);
    }

    #[test]
    fn totp_secrets_open_only_for_their_login() {
        let b = binding(1);
        let sealed = b.seal_totp("alice", b"12345678901234567890");
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 20], b"12345678901234567890");
        assert_eq!(
            b.open_totp("alice", &sealed).as_deref().map(Vec::as_slice),
            Some(&b"12345678901234567890"[..])
        );
        assert!(b.open_totp("bob", &sealed).is_none());
        assert!(b.open_totp("alice", b"12345678901234567890").is_none());
        assert!(binding(2).open_totp("alice", &sealed).is_none());
    }

    #[test]
    fn session_tags_cover_the_session_user_stage_and_seq() {
        let b = binding(1);
        let login = SessionLogin {
            user_id: 7,
            stage: Stage::Otp,
        };
        let tag = b.session_login_tag("s1", Some(&login));
        assert!(b.session_login_holds("s1", Some(&login), &tag));
        let other_user = SessionLogin {
            user_id: 8,
            ..login.clone()
        };
        let other_stage = SessionLogin {
            stage: Stage::Key,
            ..login.clone()
        };
        assert!(!b.session_login_holds("s2", Some(&login), &tag));
        assert!(!b.session_login_holds("s1", Some(&other_user), &tag));
        assert!(!b.session_login_holds("s1", Some(&other_stage), &tag));
        assert!(!b.session_login_holds("s1", None, &tag));
        let none = b.session_login_tag("s1", None);
        assert!(b.session_login_holds("s1", None, &none));

        let seq = b.session_seq_tag("s1", 5, 1000, None);
        assert!(b.session_seq_holds("s1", 5, 1000, None, &seq));
        assert!(!b.session_seq_holds("s1", 4, 1000, None, &seq));
        assert!(!b.session_seq_holds("s1", 5, 1001, None, &seq));
        assert!(!b.session_seq_holds("s2", 5, 1000, None, &seq));
        // The holder is covered: a row handed to no one, or to another, fails.
        let held = b.session_seq_tag("s1", 5, 1000, Some("a"));
        assert!(b.session_seq_holds("s1", 5, 1000, Some("a"), &held));
        assert!(!b.session_seq_holds("s1", 5, 1000, None, &held));
        assert!(!b.session_seq_holds("s1", 5, 1000, Some("b"), &held));
        assert!(!b.session_seq_holds("s1", 5, 1000, Some(""), &seq));
    }
}
