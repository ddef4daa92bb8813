//! Admins (a user row with roles) and four-eyes requests. The rows carry MACs the bank
//! checks (`binding.rs`); this layer only stores them.

use std::ops::DerefMut;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row as _};

use super::{Conn, StorageError};

/// An admin: the user, and their roles as stored (`helpdesk,auditor`) with their MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRow {
    /// The user row.
    pub user_id: i64,
    /// The login.
    pub login: String,
    /// The name.
    pub name: String,
    /// Roles, comma-separated, sorted.
    pub roles: String,
    /// MAC over the user, the login and the roles.
    pub tag: Vec<u8>,
}

impl AdminRow {
    fn decode(r: &AnyRow) -> Result<Self, StorageError> {
        Ok(Self {
            user_id: r.try_get("user_id")?,
            login: r.try_get("login")?,
            name: r.try_get("name")?,
            roles: r.try_get("roles")?,
            tag: r.try_get("tag")?,
        })
    }
}

const ADMIN_COLUMNS: &str = "a.user_id, u.login, u.name, a.roles, a.tag";

/// A four-eyes request to file.
#[derive(Debug)]
pub struct NewApproval<'a> {
    /// What (`temp_password`, …).
    pub action: &'a str,
    /// A login or an IBAN.
    pub target: &'a str,
    /// The action's parameters, JSON.
    pub params: &'a str,
    /// The requesting admin.
    pub requested_by: i64,
    /// Now.
    pub requested_at: i64,
    /// Approvable until.
    pub expires_at: i64,
    /// MAC over all of the above.
    pub tag: &'a [u8],
}

/// A four-eyes request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    /// Id.
    pub id: i64,
    /// What.
    pub action: String,
    /// A login or an IBAN.
    pub target: String,
    /// Parameters, JSON.
    pub params: String,
    /// The requesting admin's user id and login.
    pub requested_by: (i64, String),
    /// When.
    pub requested_at: i64,
    /// Approvable until.
    pub expires_at: i64,
    /// The request's MAC.
    pub tag: Vec<u8>,
    /// `pending`, `approved`, `rejected`, `used`.
    pub status: String,
    /// Who decided, and when.
    pub decided: Option<(i64, String, i64)>,
    /// The decision's MAC.
    pub decision_tag: Option<Vec<u8>>,
}

impl ApprovalRow {
    fn decode(r: &AnyRow) -> Result<Self, StorageError> {
        let decided = match (
            r.try_get::<Option<i64>, _>("decided_by")?,
            r.try_get::<Option<String>, _>("decider")?,
            r.try_get::<Option<i64>, _>("decided_at")?,
        ) {
            (Some(id), Some(login), Some(at)) => Some((id, login, at)),
            (None, None, None) => None,
            _ => return Err(StorageError::corrupt("a decision half recorded")),
        };
        Ok(Self {
            id: r.try_get("id")?,
            action: r.try_get("action")?,
            target: r.try_get("target")?,
            params: r.try_get("params")?,
            requested_by: (r.try_get("requested_by")?, r.try_get("requester")?),
            requested_at: r.try_get("requested_at")?,
            expires_at: r.try_get("expires_at")?,
            tag: r.try_get("tag")?,
            status: r.try_get("status")?,
            decided,
            decision_tag: r.try_get("decision_tag")?,
        })
    }
}

const APPROVAL_SELECT: &str = "SELECT p.id, p.action, p.target, p.params, p.requested_by, \
    r.login AS requester, p.requested_at, p.expires_at, p.tag, p.status, p.decided_by, \
    d.login AS decider, p.decided_at, p.decision_tag FROM approvals p \
    JOIN users r ON r.id = p.requested_by LEFT JOIN users d ON d.id = p.decided_by";

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// The admin row of a user, if the user is an admin.
    pub async fn admin_of(&mut self, user_id: i64) -> Result<Option<AdminRow>, StorageError> {
        let sql = format!(
            "SELECT {ADMIN_COLUMNS} FROM admins a JOIN users u ON u.id = a.user_id \
             WHERE a.user_id = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(AdminRow::decode).transpose()
    }

    /// Every admin, by login.
    pub async fn admins(&mut self) -> Result<Vec<AdminRow>, StorageError> {
        let sql = format!(
            "SELECT {ADMIN_COLUMNS} FROM admins a JOIN users u ON u.id = a.user_id \
             ORDER BY u.login"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(AdminRow::decode).collect()
    }

    /// Makes a user an admin.
    pub async fn insert_admin(
        &mut self,
        user_id: i64,
        roles: &str,
        tag: &[u8],
    ) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO admins (user_id, roles, tag) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(roles)
            .bind(tag.to_vec())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Sets an admin's roles if they are still `old` (false if they changed meanwhile).
    pub async fn set_admin_roles(
        &mut self,
        user_id: i64,
        old: &str,
        roles: &str,
        tag: &[u8],
    ) -> Result<bool, StorageError> {
        let done =
            sqlx::query("UPDATE admins SET roles = $1, tag = $2 WHERE user_id = $3 AND roles = $4")
                .bind(roles)
                .bind(tag.to_vec())
                .bind(user_id)
                .bind(old)
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Files a four-eyes request; its id.
    pub async fn insert_approval(&mut self, a: &NewApproval<'_>) -> Result<i64, StorageError> {
        let row = sqlx::query(
            "INSERT INTO approvals (action, target, params, requested_by, requested_at, \
             expires_at, tag) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(a.action)
        .bind(a.target)
        .bind(a.params)
        .bind(a.requested_by)
        .bind(a.requested_at)
        .bind(a.expires_at)
        .bind(a.tag.to_vec())
        .fetch_one(self.conn())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// One request, its row locked for the decision (PostgreSQL; SQLite's write transaction
    /// holds the database).
    pub async fn approval_for_update(
        &mut self,
        id: i64,
    ) -> Result<Option<ApprovalRow>, StorageError> {
        // PostgreSQL refuses FOR UPDATE on the nullable side of an outer join: lock the
        // request's row alone first, then read it with its names.
        if !self.for_update().is_empty() {
            sqlx::query("SELECT id FROM approvals WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(self.conn())
                .await?;
        }
        self.approval(id).await
    }

    /// One request.
    pub async fn approval(&mut self, id: i64) -> Result<Option<ApprovalRow>, StorageError> {
        let sql = format!("{APPROVAL_SELECT} WHERE p.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(ApprovalRow::decode).transpose()
    }

    /// Requests still pending or approved-but-unused, and those decided since `since`,
    /// oldest first.
    pub async fn approvals_since(&mut self, since: i64) -> Result<Vec<ApprovalRow>, StorageError> {
        let sql = format!(
            "{APPROVAL_SELECT} WHERE p.status = 'pending' OR p.requested_at >= $1 \
             OR p.decided_at >= $1 ORDER BY p.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(since)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(ApprovalRow::decode).collect()
    }

    /// Approved break-glass requests not used yet, newest first.
    pub async fn open_break_glass(&mut self) -> Result<Vec<ApprovalRow>, StorageError> {
        let sql = format!(
            "{APPROVAL_SELECT} WHERE p.action = 'break_glass' AND p.status = 'approved' \
             ORDER BY p.id DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(ApprovalRow::decode).collect()
    }

    /// Moves a request from `from` to `to` with the decision's MAC; false if it was no longer
    /// in `from` (decided meanwhile).
    pub async fn decide_approval(
        &mut self,
        id: i64,
        from: &str,
        to: &str,
        decided_by: i64,
        decided_at: i64,
        decision_tag: &[u8],
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3, \
             decision_tag = $4 WHERE id = $5 AND status = $6",
        )
        .bind(to)
        .bind(decided_by)
        .bind(decided_at)
        .bind(decision_tag.to_vec())
        .bind(id)
        .bind(from)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
