//! The bank's e-mail. A mail is rendered here from the facts it tells (pure functions, in
//! both of the bank's languages, as plain text and HTML), sealed, and queued in the outbox in
//! the transaction of the action it tells of: the action and its mail commit together, and
//! a mail server that is down delays the mail, never the action. `crate::mailer` sends what
//! is due. A mail may carry a one-time password: in the database it is sealed under the
//! bank's key (AES-256-GCM, its id in the AAD) and it is dropped once the SMTP server took it.

use serde::{Deserialize, Serialize};
use tresor_core::Password;
use tresor_core::api::BankInfo;
use tresor_core::api::profile::{Language, NoticeKind};
use zeroize::Zeroize as _;

use crate::binding::Vault;

/// One mail: recipient, subject, and the same text twice (plain and HTML).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

/// Only the recipient and subject: a body may hold a one-time password.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Drop for Mail {
    fn drop(&mut self) {
        self.text.zeroize();
        self.html.zeroize();
    }
}

/// The activation mail: a new user's login and one-time initial password, until when it
/// may be used (`expires`, as the bank prints times), and whom to call. In Ukrainian, then
/// English: the bank does not know the user's language yet.
pub fn activation(
    info: &BankInfo,
    to: &str,
    login: &str,
    password: &Password,
    expires: &str,
) -> Mail {
    let uk = vec![
        format!(
            "Для вас створено вхід до Tresor, клієнт-банку {}.",
            info.name
        ),
        String::new(),
        format!("Логін: {login}"),
        format!("Початковий пароль: {}", password.expose()),
        format!("Діє до: {expires}"),
        String::new(),
        "Під час першого входу Tresor попросить змінити цей пароль і створить ваш ключ на \
         USB-накопичувачі. Нікому не повідомляйте пароль: працівники банку його не питають."
            .to_owned(),
    ];
    let en = vec![
        format!("You now have a Tresor login at {}.", info.name),
        String::new(),
        format!("Login: {login}"),
        format!("Initial password: {}", password.expose()),
        format!("Valid until: {expires}"),
        String::new(),
        "At the first login Tresor asks you to change this password and makes your key on \
         your USB drive. Tell this password to nobody: the bank's staff never ask for it."
            .to_owned(),
    ];
    compose(
        info,
        to,
        None,
        ("ваш вхід до Tresor", uk),
        ("your Tresor login", en),
    )
}

/// What the bank tells a user unasked, or sends them on their request (a code).
#[derive(Debug)]
pub enum Notice<'a> {
    /// A code to set a new password with.
    ResetCode {
        /// The code.
        code: &'a Password,
        /// Until when, as the bank prints times.
        expires: &'a str,
    },
    /// A code confirming this address as the user's.
    EmailCode {
        /// The code.
        code: &'a Password,
        /// Until when.
        expires: &'a str,
    },
    /// A login from an address not seen before.
    NewAddress {
        /// The address.
        ip: &'a str,
        /// When.
        at: &'a str,
    },
    /// Locked after wrong passwords.
    Lockout {
        /// When.
        at: &'a str,
    },
    /// The password was reset with a mailed code.
    PasswordReset {
        /// When.
        at: &'a str,
    },
    /// Someone with the key asked to move the user's mail to another address.
    EmailChanging {
        /// The new address, masked.
        new: &'a str,
    },
    /// The user's mail now goes to another address.
    EmailChanged {
        /// The new address, masked.
        new: &'a str,
    },
    /// The bank set or removed the user's mobile number for the SMS second step.
    PhoneChanged {
        /// The number, masked, or "removed".
        phone: &'a str,
        /// When.
        at: &'a str,
    },
    /// A certificate expires soon.
    CertificateExpiry {
        /// Its serial.
        serial: &'a str,
        /// Its expiry.
        expires: &'a str,
        /// Days left (30, 14, 7, 3 or 1).
        days: u32,
    },
    /// An order was rejected.
    OrderRejected {
        /// The order's number.
        id: u64,
        /// The payer account.
        account: &'a str,
        /// Amount and currency, as printed.
        amount: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// Money came in.
    IncomingPayment {
        /// The account credited.
        account: &'a str,
        /// Amount and currency, as printed.
        amount: &'a str,
        /// From whom.
        from: &'a str,
    },
}

impl Notice<'_> {
    /// Which notice kind this is; none for a code the user asked for.
    pub fn kind(&self) -> Option<NoticeKind> {
        match self {
            Self::ResetCode { .. } | Self::EmailCode { .. } => None,
            Self::NewAddress { .. } => Some(NoticeKind::NewAddress),
            Self::Lockout { .. } => Some(NoticeKind::Lockout),
            Self::PasswordReset { .. }
            | Self::PhoneChanged { .. }
            | Self::EmailChanging { .. }
            | Self::EmailChanged { .. } => Some(NoticeKind::Credentials),
            Self::CertificateExpiry { .. } => Some(NoticeKind::CertificateExpiry),
            Self::OrderRejected { .. } => Some(NoticeKind::OrderRejected),
            Self::IncomingPayment { .. } => Some(NoticeKind::IncomingPayment),
        }
    }

    /// Subject and lines, in Ukrainian and in English.
    fn texts(&self, login: &str) -> [(String, Vec<String>); 2] {
        let never = (
            "Працівники банку ніколи не питають коди та паролі.".to_owned(),
            "The bank's staff never ask for codes or passwords.".to_owned(),
        );
        let not_you = (
            "Якщо це були не ви, негайно зверніться до банку.".to_owned(),
            "If this was not you, contact the bank at once.".to_owned(),
        );
        let (uk, en) = match self {
            Self::ResetCode { code, expires } => (
                (
                    "код для нового пароля".to_owned(),
                    vec![
                        format!("Код для встановлення нового пароля до входу {login}:"),
                        String::new(),
                        format!("Код: {}", code.expose()),
                        format!("Діє до: {expires}, один раз."),
                        String::new(),
                        not_you.0.clone(),
                        never.0.clone(),
                    ],
                ),
                (
                    "code for a new password".to_owned(),
                    vec![
                        format!("A code to set a new password for the login {login}:"),
                        String::new(),
                        format!("Code: {}", code.expose()),
                        format!("Valid until: {expires}, once."),
                        String::new(),
                        not_you.1.clone(),
                        never.1.clone(),
                    ],
                ),
            ),
            Self::EmailCode { code, expires } => (
                (
                    "підтвердження адреси".to_owned(),
                    vec![
                        format!("Щоб банк писав на цю адресу для входу {login}, введіть у Tresor код:"),
                        String::new(),
                        format!("Код: {}", code.expose()),
                        format!("Діє до: {expires}, один раз."),
                        String::new(),
                        never.0.clone(),
                    ],
                ),
                (
                    "confirm your address".to_owned(),
                    vec![
                        format!("For the bank to write to this address for the login {login}, enter this code in Tresor:"),
                        String::new(),
                        format!("Code: {}", code.expose()),
                        format!("Valid until: {expires}, once."),
                        String::new(),
                        never.1.clone(),
                    ],
                ),
            ),
            Self::NewAddress { ip, at } => (
                (
                    "вхід з нової адреси".to_owned(),
                    vec![
                        format!("{at}: вхід {login} з адреси {ip}, з якої ви раніше не входили."),
                        not_you.0.clone(),
                    ],
                ),
                (
                    "login from a new address".to_owned(),
                    vec![
                        format!("{at}: the login {login} was used from {ip}, an address not seen before."),
                        not_you.1.clone(),
                    ],
                ),
            ),
            Self::Lockout { at } => (
                (
                    "вхід заблоковано".to_owned(),
                    vec![
                        format!("{at}: вхід {login} заблоковано після кількох неправильних паролів."),
                        "Щоб розблокувати, попросіть у банку тимчасовий пароль.".to_owned(),
                        not_you.0.clone(),
                    ],
                ),
                (
                    "login locked".to_owned(),
                    vec![
                        format!("{at}: the login {login} was locked after several wrong passwords."),
                        "To unlock it, ask the bank for a temporary password.".to_owned(),
                        not_you.1.clone(),
                    ],
                ),
            ),
            Self::PasswordReset { at } => (
                (
                    "пароль змінено".to_owned(),
                    vec![
                        format!("{at}: пароль входу {login} змінено кодом, надісланим на цю адресу."),
                        not_you.0.clone(),
                    ],
                ),
                (
                    "password changed".to_owned(),
                    vec![
                        format!("{at}: the password of the login {login} was changed with a code sent to this address."),
                        not_you.1.clone(),
                    ],
                ),
            ),
            Self::PhoneChanged { phone, at } => (
                (
                    "номер для SMS-кодів змінено".to_owned(),
                    vec![
                        format!("{at}: банк змінив номер мобільного для кодів входу {login}: {phone}."),
                        not_you.0.clone(),
                    ],
                ),
                (
                    "mobile number for login codes changed".to_owned(),
                    vec![
                        format!("{at}: the bank changed the mobile number for the login {login}'s codes: {phone}."),
                        not_you.1.clone(),
                    ],
                ),
            ),
            Self::EmailChanging { new } => (
                (
                    "зміна адреси".to_owned(),
                    vec![
                        format!("Для входу {login} запитано зміну адреси пошти на {new}."),
                        "Поки код з листа на нову адресу не введено, банк пише сюди.".to_owned(),
                        not_you.0.clone(),
                    ],
                ),
                (
                    "address change".to_owned(),
                    vec![
                        format!("A change of the login {login}'s mail address to {new} was asked for."),
                        "Until the code mailed there is entered, the bank writes here.".to_owned(),
                        not_you.1.clone(),
                    ],
                ),
            ),
            Self::EmailChanged { new } => (
                (
                    "адресу змінено".to_owned(),
                    vec![
                        format!("Відтепер банк пише листи для входу {login} на {new}, не сюди."),
                        not_you.0.clone(),
                    ],
                ),
                (
                    "address changed".to_owned(),
                    vec![
                        format!("From now on the bank writes to {new} for the login {login}, not here."),
                        not_you.1.clone(),
                    ],
                ),
            ),
            Self::CertificateExpiry {
                serial,
                expires,
                days,
            } => (
                (
                    format!("сертифікат ключа спливає через {days} дн."),
                    vec![
                        format!("Сертифікат ключа входу {login} (серійний номер {serial}) діє до {expires}."),
                        "Відкрийте Tresor і оновіть ключ, поки сертифікат чинний: після цього знадобиться відновлення через банк.".to_owned(),
                    ],
                ),
                (
                    format!("your key's certificate expires in {days} day(s)"),
                    vec![
                        format!("The certificate of the login {login}'s key (serial {serial}) is valid until {expires}."),
                        "Open Tresor and renew the key while the certificate is valid: afterwards only a recovery through the bank helps.".to_owned(),
                    ],
                ),
            ),
            Self::OrderRejected {
                id,
                account,
                amount,
                reason,
            } => (
                (
                    format!("платіжне доручення {id} відхилено"),
                    vec![
                        format!("Доручення {id} з рахунку {account} на {amount} відхилено: {reason}."),
                    ],
                ),
                (
                    format!("payment order {id} rejected"),
                    vec![format!(
                        "Order {id} from account {account} for {amount} was rejected: {reason}."
                    )],
                ),
            ),
            Self::IncomingPayment {
                account,
                amount,
                from,
            } => (
                (
                    "надходження коштів".to_owned(),
                    vec![format!("На рахунок {account} надійшло {amount} від {from}.")],
                ),
                (
                    "money in".to_owned(),
                    vec![format!("{amount} came into account {account} from {from}.")],
                ),
            ),
        };
        [uk, en]
    }
}

/// `notice` as a mail to `login`'s `address`, in their language (both when not known).
pub fn notice(
    info: &BankInfo,
    to: &str,
    login: &str,
    language: Option<Language>,
    notice: &Notice<'_>,
) -> Mail {
    let [uk, en] = notice.texts(login);
    compose(info, to, language, (&uk.0, uk.1), (&en.0, en.1))
}

/// A mail from its texts in both languages: one of them, or both (Ukrainian first), each
/// ending with whom to call.
fn compose(
    info: &BankInfo,
    to: &str,
    language: Option<Language>,
    uk: (&str, Vec<String>),
    en: (&str, Vec<String>),
) -> Mail {
    let contact = contact_line(info);
    let mut uk_lines = uk.1;
    uk_lines.push(format!("Питання: {}", contact.0));
    let mut en_lines = en.1;
    en_lines.push(format!("Questions: {}", contact.1));
    let (subject, text, html) = match language {
        Some(Language::Uk) => (
            uk.0.to_owned(),
            uk_lines.join("\n"),
            format!("<div lang=\"uk\">{}</div>", html_lines(&uk_lines)),
        ),
        Some(Language::En) => (
            en.0.to_owned(),
            en_lines.join("\n"),
            format!("<div lang=\"en\">{}</div>", html_lines(&en_lines)),
        ),
        None => (
            format!("{} / {}", uk.0, en.0),
            format!("{}\n\n---\n\n{}", uk_lines.join("\n"), en_lines.join("\n")),
            format!(
                "<div lang=\"uk\">{}</div><hr><div lang=\"en\">{}</div>",
                html_lines(&uk_lines),
                html_lines(&en_lines)
            ),
        ),
    };
    Mail {
        to: to.to_owned(),
        subject: format!("{}: {subject}", info.name),
        text: format!("{text}\n"),
        html: format!("<!DOCTYPE html><html><body>{html}</body></html>"),
    }
}

/// How to reach the helpdesk, in Ukrainian and English; where the bank configured none,
/// the bank itself.
fn contact_line(info: &BankInfo) -> (String, String) {
    let parts: Vec<&str> = [&info.phone, &info.email, &info.hours]
        .into_iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return (
            format!("зверніться до {}", info.name),
            format!("contact {}", info.name),
        );
    }
    (parts.join(", "), parts.join(", "))
}

fn html_lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| {
            if l.is_empty() {
                "<br>".to_owned()
            } else {
                format!("<p>{}</p>", escape_html(l))
            }
        })
        .collect()
}

/// Text as HTML shows it: the five characters that could start markup, escaped.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An address as the audit log and an admin see it: the first character of the local part
/// and the domain (`o•••@example.com`).
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

/// A new mail's id: 16 random bytes, hex; `None` if the OS has no randomness.
pub fn new_id() -> Option<String> {
    use ring::rand::SecureRandom as _;
    let mut id = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut id).ok()?;
    Some(data_encoding::HEXLOWER.encode(&id))
}

fn aad(id: &str) -> Vec<u8> {
    [b"tresor mail v1 ".as_slice(), id.as_bytes()].concat()
}

/// `mail` sealed for the outbox under `id`.
pub fn seal(vault: &Vault, id: &str, mail: &Mail) -> Option<Vec<u8>> {
    let mut plain = serde_json::to_vec(mail).ok()?;
    let sealed = vault.seal(&aad(id), &plain);
    plain.zeroize();
    sealed
}

/// The mail sealed under `id`; `None` if it was not sealed by this bank for that id.
pub fn open(vault: &Vault, id: &str, sealed: &[u8]) -> Option<Mail> {
    let plain = vault.open(&aad(id), sealed)?;
    serde_json::from_slice(&plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank(phone: &str) -> BankInfo {
        BankInfo {
            name: "Bank <Test> & Co".into(),
            phone: phone.into(),
            ..BankInfo::default()
        }
    }

    #[test]
    fn the_activation_mail_carries_login_password_deadline_and_helpdesk_in_both_languages() {
        let password = Password::from("Initial-Pass-123");
        let m = activation(
            &bank("+380 44 000 00 00"),
            "olena@example.com",
            "olena.k",
            &password,
            "2026-12-04T10:00:00Z",
        );
        for body in [&m.text, &m.html] {
            for needle in [
                "olena.k",
                "Initial-Pass-123",
                "2026-12-04T10:00:00Z",
                "+380 44 000 00 00",
                "Початковий пароль",
                "Initial password",
            ] {
                assert!(body.contains(needle), "{needle} in {body}");
            }
        }
        // The bank's name is text in the HTML, never markup.
        assert!(m.html.contains("Bank &lt;Test&gt; &amp; Co"));
        assert!(!m.html.contains("<Test>"));
        assert_eq!(m.to, "olena@example.com");
        // Debug never shows a body.
        assert!(!format!("{m:?}").contains("Initial-Pass-123"));
        // No helpdesk configured: the bank is named instead.
        let m = activation(&bank(""), "a@b.ua", "a", &password, "then");
        assert!(m.text.contains("contact Bank <Test> & Co"));
    }

    #[test]
    fn notices_carry_no_link_and_no_code_and_speak_the_users_language() {
        let code = Password::from("40417733");
        let info = bank("+380 44 000 00 00");
        let notices = [
            Notice::ResetCode {
                code: &code,
                expires: "then",
            },
            Notice::EmailCode {
                code: &code,
                expires: "then",
            },
            Notice::NewAddress {
                ip: "198.51.100.7",
                at: "now",
            },
            Notice::Lockout { at: "now" },
            Notice::PasswordReset { at: "now" },
            Notice::PhoneChanged {
                phone: "•••567",
                at: "now",
            },
            Notice::EmailChanging {
                new: "n•••@x.ua"
            },
            Notice::EmailChanged {
                new: "n•••@x.ua"
            },
            Notice::CertificateExpiry {
                serial: "0a1b",
                expires: "then",
                days: 7,
            },
            Notice::OrderRejected {
                id: 9,
                account: "UA…",
                amount: "1.00 UAH",
                reason: "insufficient funds",
            },
            Notice::IncomingPayment {
                account: "UA…",
                amount: "1.00 UAH",
                from: "Buyer <b>",
            },
        ];
        for n in &notices {
            let asked = n.kind().is_none();
            for language in [None, Some(Language::Uk), Some(Language::En)] {
                let m = notice(&info, "u@x.ua", "olena.k", language, n);
                for body in [&m.text, &m.html] {
                    assert!(!body.contains("http"), "{n:?}: {body}");
                    assert_eq!(body.contains("40417733"), asked, "{n:?}: {body}");
                    assert!(body.contains("+380 44 000 00 00"), "{n:?}: the helpdesk");
                }
                let (uk, en) = (m.text.contains("Питання"), m.text.contains("Questions"));
                assert_eq!(
                    (uk, en),
                    match language {
                        None => (true, true),
                        Some(Language::Uk) => (true, false),
                        Some(Language::En) => (false, true),
                    },
                    "{n:?} {language:?}"
                );
                assert!(!m.html.contains("<b>"), "text, not markup");
            }
        }
    }

    #[test]
    fn escaping_and_masking() {
        let cases = [
            ("plain", "plain"),
            ("<b>&\"'", "&lt;b&gt;&amp;&quot;&#39;"),
            ("підтримка", "підтримка"),
        ];
        for (text, want) in cases {
            assert_eq!(escape_html(text), want);
        }
        let cases = [
            ("olena.k@example.com", "o•••@example.com"),
            ("ж@банк.укр", "ж•••@банк.укр"),
            ("nobody", "•••"),
        ];
        for (address, want) in cases {
            assert_eq!(mask(address), want);
        }
    }

    #[test]
    fn a_sealed_mail_opens_only_under_its_id() {
        let vault = Vault::new(&[7; 32]);
        let m = activation(
            &bank(""),
            "a@b.ua",
            "a",
            &Password::from("Secret-Pass-9"),
            "then",
        );
        let id = new_id().unwrap();
        let sealed = seal(&vault, &id, &m).unwrap();
        assert!(!sealed.windows(13).any(|w| w == b"Secret-Pass-9"));
        assert_eq!(open(&vault, &id, &sealed), Some(m.clone()));
        assert_eq!(open(&vault, &new_id().unwrap(), &sealed), None);
        assert_eq!(open(&Vault::new(&[8; 32]), &id, &sealed), None);
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_eq!(open(&vault, &id, &flipped), None);
    }
}
