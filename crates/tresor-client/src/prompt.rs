//! Secrets for the command lines: from an environment variable (scripts), else asked on the
//! terminal without echo. Never from argv, where other users of the machine could read them.

use tresor_core::Password;

/// A secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// Neither the variable nor a terminal.
    #[error("no {0} in the environment, and no terminal to ask on")]
    NoTerminal(String),
    /// The two entries of a new secret differ.
    #[error("the two entries differ")]
    Mismatch,
}

/// The secret in `var`, or asked with `prompt`.
pub fn secret(var: &str, prompt: &str) -> Result<Password, PromptError> {
    if let Ok(value) = std::env::var(var) {
        return Ok(Password::new(value));
    }
    rpassword::prompt_password(prompt)
        .map(Password::new)
        .map_err(|_| PromptError::NoTerminal(var.to_owned()))
}

/// A new secret: from `var`, or asked twice on the terminal.
pub fn new_secret(var: &str, prompt: &str) -> Result<Password, PromptError> {
    if std::env::var_os(var).is_some() {
        return secret(var, prompt);
    }
    let first = secret(var, prompt)?;
    let again = secret(var, "Repeat it: ")?;
    if first.expose() != again.expose() {
        return Err(PromptError::Mismatch);
    }
    Ok(first)
}

/// A one-time code that arrives after the command started (by SMS): from `var`; else, when
/// the standard input is a pipe (a script that reads the message elsewhere), one line of
/// it; else asked on the terminal.
pub fn later_code(var: &str, prompt: &str) -> Result<Password, PromptError> {
    use std::io::IsTerminal as _;
    if std::env::var_os(var).is_some() || std::io::stdin().is_terminal() {
        return secret(var, prompt);
    }
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    let code = Password::new(line.trim().to_owned());
    zeroize::Zeroize::zeroize(&mut line);
    match read {
        Ok(n) if n > 0 => Ok(code),
        _ => Err(PromptError::NoTerminal(var.to_owned())),
    }
}
