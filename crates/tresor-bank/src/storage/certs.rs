//! Client certificates the bank CA issued, and their revocation.

use std::ops::DerefMut;

use sqlx::{AnyConnection, AssertSqlSafe};

use super::rows::{
    Activation, CERT_COLUMNS, CertPurpose, CertificateRow, RevokeReason, StoredEnum as _,
};
use super::{Conn, StorageError};

/// A certificate to record.
#[derive(Debug)]
pub struct NewCertificate<'a> {
    /// Serial, lowercase hex.
    pub serial: &'a str,
    /// Whose.
    pub user_id: i64,
    /// DER.
    pub der: &'a [u8],
    /// Validity start, Unix seconds.
    pub not_before: i64,
    /// Expiry, Unix seconds.
    pub not_after: i64,
    /// Now.
    pub issued_at: i64,
    /// Why.
    pub purpose: CertPurpose,
    /// Whether it may open sessions now, or waits for its letter.
    pub activation: Activation,
    /// MAC over the serial and the activation state.
    pub activation_tag: &'a [u8],
}

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    async fn certificates_where(
        &mut self,
        condition: &str,
        bind: &str,
    ) -> Result<Vec<CertificateRow>, StorageError> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates c JOIN users u ON u.id = c.user_id \
             WHERE {condition} ORDER BY c.issued_at DESC, c.serial"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(bind)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(CertificateRow::decode).collect()
    }

    /// The certificate with this serial.
    pub async fn certificate(
        &mut self,
        serial: &str,
    ) -> Result<Option<CertificateRow>, StorageError> {
        Ok(self
            .certificates_where("c.serial = $1", serial)
            .await?
            .into_iter()
            .next())
    }

    /// Certificates of one login, or of all (`None`), newest first.
    pub async fn certificates(
        &mut self,
        login: Option<&str>,
    ) -> Result<Vec<CertificateRow>, StorageError> {
        match login {
            Some(login) => self.certificates_where("u.login = $1", login).await,
            None => self.certificates_where("$1 = ''", "").await,
        }
    }

    /// The user's certificates that are neither revoked nor expired at `now`.
    pub async fn valid_certificates_of(
        &mut self,
        user_id: i64,
        now: i64,
    ) -> Result<Vec<CertificateRow>, StorageError> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates c JOIN users u ON u.id = c.user_id \
             WHERE c.user_id = $1 AND c.revoked_at IS NULL AND c.not_after > $2 \
             ORDER BY c.issued_at DESC, c.serial"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(now)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(CertificateRow::decode).collect()
    }

    /// Records an issued certificate.
    pub async fn insert_certificate(&mut self, c: &NewCertificate<'_>) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO certificates (serial, user_id, der, not_before, not_after, issued_at, \
             purpose, activation, activation_tag) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(c.serial)
        .bind(c.user_id)
        .bind(c.der.to_vec())
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(c.issued_at)
        .bind(c.purpose.to_db())
        .bind(c.activation.to_db())
        .bind(c.activation_tag.to_vec())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Moves a certificate from `from` to `to` with the new state's MAC; false if it was no
    /// longer in `from`.
    pub async fn set_activation(
        &mut self,
        serial: &str,
        from: Activation,
        to: Activation,
        tag: &[u8],
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE certificates SET activation = $1, activation_tag = $2 \
             WHERE serial = $3 AND activation = $4",
        )
        .bind(to.to_db())
        .bind(tag.to_vec())
        .bind(serial)
        .bind(from.to_db())
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes one certificate; false if there is none, or it was already revoked.
    pub async fn revoke_certificate(
        &mut self,
        serial: &str,
        now: i64,
        reason: RevokeReason,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revoke_reason = $2 \
             WHERE serial = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason.to_db())
        .bind(serial)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Certificates whose activation state has no MAC yet (rows older than version 5).
    pub async fn unbound_activations(&mut self) -> Result<Vec<(String, Activation)>, StorageError> {
        let rows =
            sqlx::query("SELECT serial, activation FROM certificates WHERE activation_tag IS NULL")
                .fetch_all(self.conn())
                .await?;
        rows.iter()
            .map(|r| {
                let state: String = sqlx::Row::try_get(r, "activation")?;
                Ok((
                    sqlx::Row::try_get(r, "serial")?,
                    Activation::from_db(&state)?,
                ))
            })
            .collect()
    }

    /// Sets the MAC of a row's activation state, where it has none.
    pub async fn bind_activation(&mut self, serial: &str, tag: &[u8]) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE certificates SET activation_tag = $1 WHERE serial = $2 \
             AND activation_tag IS NULL",
        )
        .bind(tag.to_vec())
        .bind(serial)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Revokes every certificate of a user that is not revoked yet; how many.
    pub async fn revoke_all_of(
        &mut self,
        user_id: i64,
        now: i64,
        reason: RevokeReason,
    ) -> Result<u64, StorageError> {
        let done = sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revoke_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason.to_db())
        .bind(user_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected())
    }
}
