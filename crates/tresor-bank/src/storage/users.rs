//! Users: passwords, lockout, one-time passwords, TOTP state, menus.

use std::ops::DerefMut;

use sqlx::{AnyConnection, AssertSqlSafe, Row as _};
use tresor_core::api::Menus;

use super::rows::{PasswordKind, StoredEnum as _, USER_COLUMNS, UserRow};
use super::{Conn, StorageError};

/// A user to create.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// Login.
    pub login: &'a str,
    /// Full name.
    pub name: &'a str,
    /// Argon2id hash of the initial password.
    pub password_hash: &'a str,
    /// When the initial password expires.
    pub password_expires: i64,
    /// Now.
    pub created_at: i64,
}

/// What a successful login consumes, each part conditioned on the state it was decided on.
#[derive(Debug)]
pub struct LoginSuccess<'a> {
    /// The user.
    pub user_id: i64,
    /// The password hash that was verified: a concurrent change makes the write miss.
    pub password_hash: &'a str,
    /// Whether it was a one-time password, which this login uses up.
    pub one_time: bool,
}

/// A user's secrets as stored: bound hashes and sealed TOTP secrets (`crate::binding`).
#[derive(Debug)]
pub struct UserSecrets {
    /// The login password's bound hash.
    pub password_hash: String,
    /// The emergency password's bound hash, if one is pending.
    pub emergency_hash: Option<String>,
    /// The sealed TOTP secret.
    pub totp_secret: Option<Vec<u8>>,
    /// The sealed TOTP secret awaiting its first code.
    pub totp_pending: Option<Vec<u8>>,
}

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// Rewrites a user's secrets in their stored form (the upgrade that binds them).
    pub async fn set_user_secrets(
        &mut self,
        user_id: i64,
        s: &UserSecrets,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE users SET password_hash = $1, emergency_hash = $2, totp_secret = $3, \
             totp_pending = $4 WHERE id = $5",
        )
        .bind(&s.password_hash)
        .bind(s.emergency_hash.as_deref())
        .bind(s.totp_secret.clone())
        .bind(s.totp_pending.clone())
        .bind(user_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Gives back a reservation whose check did not happen (the bank was busy).
    pub async fn release_anonymous_check(&mut self, user_id: i64) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE users SET anon_failures = anon_failures - 1 WHERE id = $1 AND anon_failures > 0",
        )
        .bind(user_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Reserves one anonymous password check for the user: at most `limit` in `window`
    /// seconds, counted before the password is looked at, so that concurrent guesses cannot
    /// all pass a count read earlier. False when the limit is reached.
    pub async fn reserve_anonymous_check(
        &mut self,
        user_id: i64,
        limit: u32,
        now: i64,
        window: i64,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE users SET \
             anon_failures = CASE WHEN anon_window <= $1 THEN 1 ELSE anon_failures + 1 END, \
             anon_window = CASE WHEN anon_window <= $1 THEN $2 ELSE anon_window END \
             WHERE id = $3 AND (anon_window <= $1 OR anon_failures < $4)",
        )
        .bind(now)
        .bind(now.saturating_add(window))
        .bind(user_id)
        .bind(i64::from(limit))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The user with this login.
    pub async fn user_by_login(&mut self, login: &str) -> Result<Option<UserRow>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(login)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(UserRow::decode).transpose()
    }

    /// The user with this id; with `lock`, locked until the transaction ends.
    async fn user_by_id_locked(
        &mut self,
        id: i64,
        lock: bool,
    ) -> Result<Option<UserRow>, StorageError> {
        let lock = if lock { self.for_update() } else { "" };
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1{lock}");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(UserRow::decode).transpose()
    }

    /// The user with this id.
    pub async fn user_by_id(&mut self, id: i64) -> Result<Option<UserRow>, StorageError> {
        self.user_by_id_locked(id, false).await
    }

    /// The user with this id, locked until the transaction ends.
    pub async fn user_for_update(&mut self, id: i64) -> Result<Option<UserRow>, StorageError> {
        self.user_by_id_locked(id, true).await
    }

    /// All users, by login.
    pub async fn users(&mut self) -> Result<Vec<UserRow>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY login");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(UserRow::decode).collect()
    }

    /// Creates a user with an initial password; false if the login is taken.
    pub async fn insert_user(&mut self, u: &NewUser<'_>) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO users (login, name, password_hash, password_kind, password_expires, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (login) DO NOTHING",
        )
        .bind(u.login)
        .bind(u.name)
        .bind(u.password_hash)
        .bind(PasswordKind::Initial.to_db())
        .bind(u.password_expires)
        .bind(u.created_at)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a successful login: failures reset, a one-time password used up. Applies only
    /// if the account is still unlocked, the password still the one verified and, for a
    /// one-time password, still unused: of two logins racing with one initial password, one
    /// succeeds.
    pub async fn record_login(&mut self, s: &LoginSuccess<'_>) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE users SET failed_logins = 0, anon_failures = 0, password_used = $1 \
             WHERE id = $2 AND locked = 0 AND password_hash = $3 AND password_used = 0",
        )
        .bind(i64::from(s.one_time))
        .bind(s.user_id)
        .bind(s.password_hash)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Uses up the emergency password with this hash; false if it is no longer pending
    /// (used by a concurrent login, or replaced by a new one).
    pub async fn consume_emergency(
        &mut self,
        user_id: i64,
        hash: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE users SET emergency_hash = NULL, emergency_expires = NULL \
             WHERE id = $1 AND emergency_hash = $2",
        )
        .bind(user_id)
        .bind(hash)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts a wrong password, locking at `threshold`, in one conditional write. `None` if
    /// the account was already locked; else the consecutive failures and whether this one
    /// locked it.
    pub async fn count_wrong_password(
        &mut self,
        user_id: i64,
        threshold: u32,
    ) -> Result<Option<(i64, bool)>, StorageError> {
        let row = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1, \
             locked = CASE WHEN failed_logins + 1 >= $1 THEN 1 ELSE 0 END \
             WHERE id = $2 AND locked = 0 RETURNING failed_logins, locked",
        )
        .bind(i64::from(threshold))
        .bind(user_id)
        .fetch_optional(self.conn())
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("failed_logins")?,
                super::rows::flag(&r, "locked")?,
            ))
        })
        .transpose()
    }

    /// Sets a password the user chose; clears one-time state and failures. Applies only if
    /// the password is still the one verified.
    pub async fn set_regular_password(
        &mut self,
        user_id: i64,
        verified_hash: &str,
        new_hash: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, password_kind = $2, password_expires = NULL, \
             password_used = 0, failed_logins = 0 WHERE id = $3 AND password_hash = $4",
        )
        .bind(new_hash)
        .bind(PasswordKind::Regular.to_db())
        .bind(user_id)
        .bind(verified_hash)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a temporary password: unlocks, resets failures.
    pub async fn set_temporary_password(
        &mut self,
        user_id: i64,
        hash: &str,
        expires: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_kind = $2, password_expires = $3, \
             password_used = 0, locked = 0, failed_logins = 0, otp_failures = 0 WHERE id = $4",
        )
        .bind(hash)
        .bind(PasswordKind::Temporary.to_db())
        .bind(expires)
        .bind(user_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Locks, or unlocks and resets the failure counters.
    pub async fn set_locked(&mut self, user_id: i64, locked: bool) -> Result<(), StorageError> {
        let sql = if locked {
            "UPDATE users SET locked = 1 WHERE id = $1"
        } else {
            "UPDATE users SET locked = 0, failed_logins = 0, otp_failures = 0 WHERE id = $1"
        };
        sqlx::query(sql).bind(user_id).execute(self.conn()).await?;
        Ok(())
    }

    /// Sets an emergency password; rights are restricted until recovery completes.
    pub async fn set_emergency(
        &mut self,
        user_id: i64,
        hash: &str,
        expires: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE users SET emergency_hash = $1, emergency_expires = $2, recovery_pending = 1 \
             WHERE id = $3",
        )
        .bind(hash)
        .bind(expires)
        .bind(user_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Recovery completed: rights no longer restricted.
    pub async fn finish_recovery(&mut self, user_id: i64) -> Result<(), StorageError> {
        sqlx::query("UPDATE users SET recovery_pending = 0, suspended = 0 WHERE id = $1")
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Marks a user suspended (their key blocked) until a recovery completes.
    pub async fn set_suspended(&mut self, user_id: i64) -> Result<(), StorageError> {
        sqlx::query("UPDATE users SET suspended = 1 WHERE id = $1")
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Full or limited menus.
    pub async fn set_menus(&mut self, user_id: i64, menus: Menus) -> Result<(), StorageError> {
        sqlx::query("UPDATE users SET menus = $1 WHERE id = $2")
            .bind(menus.to_db())
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Stores a TOTP secret awaiting its first code.
    pub async fn set_totp_pending(
        &mut self,
        user_id: i64,
        secret: &[u8],
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE users SET totp_pending = $1 WHERE id = $2")
            .bind(secret.to_vec())
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The TOTP secret awaiting its first code.
    pub async fn totp_pending(&mut self, user_id: i64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(
            sqlx::query_scalar("SELECT totp_pending FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(self.conn())
                .await?
                .flatten(),
        )
    }

    /// Makes the pending secret the user's TOTP secret, if it is still the one checked.
    pub async fn confirm_totp(
        &mut self,
        user_id: i64,
        secret: &[u8],
        step: i64,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, \
             totp_last_step = $1, otp_failures = 0 WHERE id = $2 AND totp_pending = $3",
        )
        .bind(step)
        .bind(user_id)
        .bind(secret.to_vec())
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Reserves one TOTP check against the limit before the code is looked at, counting it
    /// as a failure until [`otp_accepted`](Self::otp_accepted) says otherwise: however many
    /// codes arrive at once, at most `limit` are ever checked. False when the limit is
    /// reached.
    pub async fn reserve_otp_check(
        &mut self,
        user_id: i64,
        limit: u32,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE users SET otp_failures = otp_failures + 1 WHERE id = $1 AND otp_failures < $2",
        )
        .bind(user_id)
        .bind(i64::from(limit))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A right code for `step`: accepted once, only if no later or equal step was (two
    /// logins racing with one code: one passes); resets the failures.
    pub async fn otp_accepted(&mut self, user_id: i64, step: i64) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $1, otp_failures = 0 \
             WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(user_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
