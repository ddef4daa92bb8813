//! Admin commands over the secure channel: who the admin is (a session signed by an admin
//! certificate, logged in with the key), what their roles allow (loaded and checked on every
//! request, `rules::admin`), and the requests that wait for a second admin.
//!
//! A four-eyes request is filed with what it will do, under a MAC; the approver's request
//! carries it out, in the transaction that records the decision, and is the only one to see
//! the secret it makes. The requester can withdraw it; nobody approves their own; nothing is
//! approved after its deadline. Both steps are audited, each naming its admin and the
//! certificate they signed with.

use serde::{Deserialize, Serialize};
use tresor_core::Login;
use tresor_core::api::admin::{
    AdminAction, AdminView, ApprovalView, AuditCheck, AuditRecord, IssuedSecret, Role, roles_text,
};
use tresor_core::api::{ApiError, ErrorCode, Reply, Rights, Stage};
use tresor_core::channel::Mode;
use tresor_core::pki::{self, CertKind};

use crate::admin::{Actor, AdminError, status_of};
use crate::audit::AuditFilter;
use crate::bank::{Answer, Bank, Ctx, Refusal, Work, not_allowed, secs};
use crate::binding::ApprovalParts;
use crate::passwords;
use crate::rules::admin::{
    self as rules, AdminOp, ApprovalAction, ApprovalStatus, Decision, DecisionRefusal,
};
use crate::storage::admins::{ApprovalRow, NewApproval};
use crate::storage::{SessionLogin, StorageError, UserRow};

/// What a request will do besides its action and target, stored as JSON under its MAC.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iban: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rights: Option<Rights>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<Role>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn forbidden(what: &str) -> Refusal {
    Refusal(ApiError::new(ErrorCode::Forbidden, what))
}

impl From<AdminError> for Refusal {
    fn from(e: AdminError) -> Self {
        let code = match &e {
            AdminError::Storage(s) => {
                tracing::error!(error = %s, "storage failed");
                return Refusal(ApiError::new(
                    ErrorCode::Internal,
                    "the bank could not complete the request; nothing was changed, try again",
                ));
            }
            AdminError::NoSuchUser(_)
            | AdminError::NoSuchAccount(_)
            | AdminError::NoSuchCertificate(_) => ErrorCode::NotFound,
            AdminError::UserExists(_) | AdminError::AccountExists(_) => ErrorCode::Conflict,
            AdminError::Invalid(_) => ErrorCode::Invalid,
            AdminError::NoBreakGlassWindow => ErrorCode::Forbidden,
        };
        Refusal(ApiError::new(code, e.to_string()))
    }
}

/// The login an action concerns, where it matters whether that login is an admin's.
fn target_login(action: &AdminAction) -> Option<&str> {
    match action {
        AdminAction::LockUser { login }
        | AdminAction::UnlockUser { login }
        | AdminAction::TempPassword { login }
        | AdminAction::EmergencyPassword { login }
        | AdminAction::SuspendUser { login } => Some(login),
        _ => None,
    }
}

impl Bank {
    /// An admin command on this session.
    pub(crate) async fn admin_request(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        action: AdminAction,
    ) -> Answer {
        let key_session = ctx.mode == Mode::Authenticated
            && ctx.cert_kind == Some(CertKind::Admin)
            && session.stage == Stage::Key;
        let (Some(serial), true) = (ctx.serial, key_session) else {
            self.audit_alone(ctx.event(
                &user.login,
                "admin_refused",
                "refused: not an admin key session",
                "",
            ))
            .await?;
            return Err(not_allowed(
                "admin work needs a session signed by an admin's key and logged in with it",
            ));
        };
        let actor = Actor::admin(&user.login, &pki::serial_hex(serial), &ctx.ip);
        let roles = {
            let mut read = self.store.read().await?;
            self.roles_of(&mut read, user).await?
        };
        let Some(roles) = roles else {
            self.audit_alone(actor.event(
                &user.login,
                "admin_refused",
                "refused: not an admin",
                "",
            ))
            .await?;
            return Err(forbidden("this account is not a bank admin"));
        };
        let op = AdminOp::of(&action);
        let on_admin = match target_login(&action) {
            Some(login) => self.is_admin_login(login).await?,
            None => false,
        };
        if !rules::may(op, &roles, on_admin) {
            self.audit_alone(actor.event(
                target_login(&action).unwrap_or(""),
                "admin_refused",
                "refused: role",
                &format!(
                    "{op:?} needs one of: {}",
                    roles_text(rules::roles_for(op, on_admin))
                ),
            ))
            .await?;
            return Err(forbidden("your admin roles do not allow this"));
        }
        self.admin_action(&actor, user, &roles, action).await
    }

    async fn admin_action(
        &self,
        actor: &Actor,
        me: &UserRow,
        roles: &[Role],
        action: AdminAction,
    ) -> Answer {
        match action {
            AdminAction::WhoAmI {} => Ok(Reply::Admin(AdminView {
                login: me.login.clone(),
                name: me.name.clone(),
                roles: roles.to_vec(),
                status: status_of(me, self.unix_now()),
            })),
            AdminAction::FindUsers { query } => Ok(Reply::Users {
                users: self.find_users(query.as_deref()).await?,
            }),
            AdminAction::ShowUser { login } => Ok(Reply::User(self.show_user(&login).await?)),
            AdminAction::AddUser { login, name, email } => {
                // As stored: the login folded to lower case.
                let stored = Login::new(&login).map_or_else(|_| login.clone(), |l| l.to_string());
                match email {
                    Some(email) => {
                        let to = self.add_user_by_mail(actor, &login, &name, &email).await?;
                        Ok(Reply::Mailed { login: stored, to })
                    }
                    None => {
                        let password = self.add_user(actor, &login, &name).await?;
                        Ok(Reply::Secret(self.initial_secret(&stored, password)))
                    }
                }
            }
            AdminAction::SetPhone { login, phone } => {
                self.set_phone(actor, &login, phone.as_deref()).await?;
                Ok(Reply::Done)
            }
            AdminAction::LockUser { login } => {
                self.lock_user(actor, &login).await?;
                Ok(Reply::Done)
            }
            AdminAction::UnlockUser { login } => {
                self.unlock_user(actor, &login).await?;
                Ok(Reply::Done)
            }
            AdminAction::SetMenus { login, menus } => {
                self.set_menus(actor, &login, menus).await?;
                Ok(Reply::Done)
            }
            AdminAction::TempPassword { login } => {
                self.existing_user(&login).await?;
                self.file(
                    actor,
                    me,
                    ApprovalAction::TempPassword,
                    &login,
                    &Params::default(),
                )
                .await
            }
            AdminAction::EmergencyPassword { login } => {
                self.existing_user(&login).await?;
                self.file(
                    actor,
                    me,
                    ApprovalAction::EmergencyPassword,
                    &login,
                    &Params::default(),
                )
                .await
            }
            AdminAction::AddAccount {
                iban,
                holder,
                currency,
                balance,
            } => {
                self.add_account(actor, &iban, &holder, &currency, balance)
                    .await?;
                Ok(Reply::Done)
            }
            AdminAction::ListAccounts {} => Ok(Reply::Accounts {
                accounts: self.list_accounts().await?,
            }),
            AdminAction::SetSignatures { iban, count } => {
                let current = self
                    .store
                    .read()
                    .await?
                    .account(&iban)
                    .await?
                    .ok_or_else(|| AdminError::NoSuchAccount(iban.clone()))?
                    .signatures_required;
                if rules::signatures_need_approval(current, count) {
                    let params = Params {
                        count: Some(count),
                        ..Params::default()
                    };
                    return self
                        .file(actor, me, ApprovalAction::LowerSignatures, &iban, &params)
                        .await;
                }
                let mut work = self.begin().await?;
                self.apply_signatures(&mut work, actor, &iban, count, true, "")
                    .await?;
                self.commit(work).await?;
                Ok(Reply::Done)
            }
            AdminAction::ChangeRights {
                login,
                iban,
                rights,
                grant,
            } => {
                if rules::rights_need_approval(rights, grant) {
                    self.existing_user(&login).await?;
                    let params = Params {
                        iban: Some(iban),
                        rights: Some(rights),
                        ..Params::default()
                    };
                    return self
                        .file(actor, me, ApprovalAction::GrantRights, &login, &params)
                        .await;
                }
                let rights = self
                    .change_rights(actor, &login, &iban, rights, grant)
                    .await?;
                Ok(Reply::Rights { rights })
            }
            AdminAction::ListCertificates { login } => Ok(Reply::Certificates {
                certificates: self.list_certificates(login.as_deref()).await?,
            }),
            AdminAction::RevokeCertificate { serial } => {
                self.revoke_certificate(actor, &serial).await?;
                Ok(Reply::Done)
            }
            AdminAction::ActivateCertificate { login, fingerprint } => {
                let serial = self
                    .activate_certificate(actor, &login, &fingerprint)
                    .await?;
                Ok(Reply::Certificates {
                    certificates: self
                        .list_certificates(Some(&login))
                        .await?
                        .into_iter()
                        .filter(|c| c.serial == serial)
                        .collect(),
                })
            }
            AdminAction::SuspendUser { login } => {
                self.suspend_user(actor, &login).await?;
                Ok(Reply::Done)
            }
            AdminAction::AuditList {
                login,
                event,
                from,
                until,
                limit,
            } => {
                let time = |t: Option<u64>| t.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
                let filter = AuditFilter {
                    login: login.as_deref(),
                    event: event.as_deref(),
                    from: time(from),
                    until: time(until),
                };
                let records =
                    crate::audit::search(&self.store, &filter, i64::from(limit.min(10_000)))
                        .await?
                        .into_iter()
                        .map(|r| AuditRecord {
                            seq: u64::try_from(r.seq).unwrap_or(0),
                            at: u64::try_from(crate::storage::unix(r.at)).unwrap_or(0),
                            actor: r.actor,
                            login: r.login,
                            ip: r.ip,
                            event: r.event,
                            outcome: r.outcome,
                            detail: r.detail,
                        })
                        .collect();
                Ok(Reply::AuditRecords { records })
            }
            AdminAction::AuditVerify {} => {
                let check = match self.audit_verify().await? {
                    Ok(n) => AuditCheck {
                        intact: true,
                        records: u64::try_from(n).unwrap_or(0),
                        problem: None,
                    },
                    Err(t) => AuditCheck {
                        intact: false,
                        records: 0,
                        problem: Some(t.to_string()),
                    },
                };
                Ok(Reply::AuditCheck(check))
            }
            AdminAction::ListAdmins {} => Ok(Reply::Admins {
                admins: self.list_admins().await?,
            }),
            AdminAction::AddAdmin { login, name, roles } => {
                let login = Login::new(&login).map_err(|e| AdminError::Invalid(e.to_string()))?;
                let name = name.trim().to_owned();
                if name.is_empty()
                    || name.chars().count() > 200
                    || name.chars().any(char::is_control)
                {
                    return Err(AdminError::Invalid(
                        "the name must have 1 to 200 printable characters".into(),
                    )
                    .into());
                }
                if roles.is_empty() {
                    return Err(
                        AdminError::Invalid("an admin needs at least one role".into()).into(),
                    );
                }
                if self
                    .store
                    .read()
                    .await?
                    .user_by_login(login.as_str())
                    .await?
                    .is_some()
                {
                    return Err(AdminError::UserExists(login.to_string()).into());
                }
                let params = Params {
                    name: Some(name),
                    roles: Some(sorted(roles)),
                    ..Params::default()
                };
                self.file(actor, me, ApprovalAction::AddAdmin, login.as_str(), &params)
                    .await
            }
            AdminAction::SetRoles { login, roles } => {
                if roles.is_empty() {
                    return Err(
                        AdminError::Invalid("an admin needs at least one role".into()).into(),
                    );
                }
                if !self.is_admin_login(&login).await? {
                    return Err(AdminError::Invalid(format!("{login} is not an admin")).into());
                }
                let params = Params {
                    roles: Some(sorted(roles)),
                    ..Params::default()
                };
                self.file(actor, me, ApprovalAction::SetRoles, &login, &params)
                    .await
            }
            AdminAction::BreakGlass { reason } => {
                let reason = reason.trim().to_owned();
                if reason.is_empty() || reason.chars().any(char::is_control) {
                    return Err(AdminError::Invalid(
                        "say why break-glass is needed, in printable text".into(),
                    )
                    .into());
                }
                let params = Params {
                    reason: Some(reason),
                    ..Params::default()
                };
                self.file(actor, me, ApprovalAction::BreakGlass, "", &params)
                    .await
            }
            AdminAction::ListRequests {} => {
                let since = self.unix_now() - secs(self.policy.approval_seconds);
                let rows = self.store.read().await?.approvals_since(since).await?;
                let requests = rows
                    .iter()
                    .filter(|r| self.request_holds(r))
                    .map(|r| self.approval_view(r))
                    .collect();
                Ok(Reply::Requests { requests })
            }
            AdminAction::Approve { id } => self.approve(actor, me, roles, id).await,
            AdminAction::Reject { id } => self.reject(actor, me, roles, id).await,
        }
    }

    fn parts<'a>(r: &'a ApprovalRow) -> ApprovalParts<'a> {
        ApprovalParts {
            action: &r.action,
            target: &r.target,
            params: &r.params,
            requested_by: r.requested_by.0,
            requested_at: r.requested_at,
            expires_at: r.expires_at,
        }
    }

    /// Whether a stored request was filed by this bank, and its decision (if any) made by it.
    fn request_holds(&self, r: &ApprovalRow) -> bool {
        if !self.binding.approval_holds(&Self::parts(r), &r.tag) {
            return false;
        }
        match (&r.decided, &r.decision_tag) {
            (None, None) => r.status == ApprovalStatus::Pending.as_str(),
            (Some((by, _, at)), Some(tag)) => self
                .binding
                .decision_holds(r.id, &r.tag, &r.status, *by, *at, tag),
            _ => false,
        }
    }

    fn approval_view(&self, r: &ApprovalRow) -> ApprovalView {
        let action = ApprovalAction::parse(&r.action);
        let params: Params = serde_json::from_str(&r.params).unwrap_or_default();
        let now = self.unix_now();
        let status = if r.status == ApprovalStatus::Pending.as_str() && now > r.expires_at {
            "expired".to_owned()
        } else {
            r.status.clone()
        };
        ApprovalView {
            id: u64::try_from(r.id).unwrap_or(0),
            action: r.action.clone(),
            target: r.target.clone(),
            summary: summary(action, &r.target, &params),
            requested_by: r.requested_by.1.clone(),
            requested_at: u64::try_from(r.requested_at).unwrap_or(0),
            expires_at: u64::try_from(r.expires_at).unwrap_or(0),
            status,
            decided_by: r.decided.as_ref().map(|d| d.1.clone()),
            // Whether the target is an admin is decided at approval; the stricter list shown.
            approvers: action
                .map(|a| a.approvers(a == ApprovalAction::TempPassword).to_vec())
                .unwrap_or_default(),
        }
    }

    /// Files a four-eyes request.
    async fn file(
        &self,
        actor: &Actor,
        me: &UserRow,
        action: ApprovalAction,
        target: &str,
        params: &Params,
    ) -> Answer {
        let now = self.unix_now();
        let params = serde_json::to_string(params).map_err(StorageError::corrupt)?;
        let parts = ApprovalParts {
            action: action.as_str(),
            target,
            params: &params,
            requested_by: me.id,
            requested_at: now,
            expires_at: now + secs(self.policy.approval_seconds).max(1),
        };
        let tag = self.binding.approval_tag(&parts);
        let mut work = self.begin().await?;
        let id = work
            .insert_approval(&NewApproval {
                action: parts.action,
                target,
                params: &params,
                requested_by: me.id,
                requested_at: now,
                expires_at: parts.expires_at,
                tag: &tag,
            })
            .await?;
        let row = work
            .approval(id)
            .await?
            .ok_or_else(|| StorageError::corrupt("a request just filed is not there"))?;
        let view = self.approval_view(&row);
        work.record(actor.event(
            login_of_target(action, target),
            "approval_request",
            "filed",
            &format!("#{id} {}: {}", action.as_str(), view.summary),
        ));
        self.commit(work).await?;
        Ok(Reply::Requested(view))
    }

    /// Loads a request for a decision, in the decision's transaction, refusing one this bank
    /// did not file.
    async fn request_for_decision(
        &self,
        work: &mut Work,
        id: u64,
    ) -> Result<(ApprovalRow, ApprovalAction, Params), Refusal> {
        let id = i64::try_from(id).map_err(|_| not_found(id))?;
        let row = work
            .approval_for_update(id)
            .await?
            .ok_or_else(|| not_found(id as u64))?;
        let action = ApprovalAction::parse(&row.action);
        let params = serde_json::from_str::<Params>(&row.params);
        match (self.request_holds(&row), action, params) {
            (true, Some(action), Ok(params)) => Ok((row, action, params)),
            _ => {
                tracing::error!(id, "a four-eyes request is not bound to this bank: refused");
                Err(
                    StorageError::corrupt("a four-eyes request was changed without the bank's key")
                        .into(),
                )
            }
        }
    }

    async fn approve(&self, actor: &Actor, me: &UserRow, roles: &[Role], id: u64) -> Answer {
        // Argon2 runs before the transaction: peek at what the request needs first.
        let peek = match i64::try_from(id) {
            Ok(i) => self.store.read().await?.approval(i).await?,
            Err(_) => None,
        };
        let Some(peek) = peek else {
            return Err(not_found(id));
        };
        let password = match ApprovalAction::parse(&peek.action) {
            Some(ApprovalAction::TempPassword | ApprovalAction::EmergencyPassword) => {
                let p = passwords::one_time();
                let phc = passwords::hash_patiently(&p).await;
                Some((p, phc))
            }
            _ => None,
        };
        let new_admin = match (
            ApprovalAction::parse(&peek.action),
            serde_json::from_str::<Params>(&peek.params),
        ) {
            (
                Some(ApprovalAction::AddAdmin),
                Ok(Params {
                    name: Some(name), ..
                }),
            ) => Some(self.new_account(&peek.target, &name).await?),
            _ => None,
        };

        let now = self.unix_now();
        let mut work = self.begin().await?;
        let (row, action, params) = self.request_for_decision(&mut work, id).await?;
        let on_admin = match action {
            ApprovalAction::TempPassword => match work.user_by_login(&row.target).await? {
                Some(u) => work.admin_of(u.id).await?.is_some(),
                None => false,
            },
            _ => false,
        };
        let decision = Decision {
            action,
            status: ApprovalStatus::parse(&row.status).unwrap_or(ApprovalStatus::Rejected),
            expires_at: row.expires_at,
            on_admin,
            own: row.requested_by.0 == me.id,
            roles,
            now,
        };
        if let Err(refusal) = rules::may_approve(&decision) {
            return self
                .refuse_decision(work, actor, &row, action, refusal)
                .await;
        }
        let approval = format!(
            "; four eyes: request #{} by {}, approved by {}",
            row.id, row.requested_by.1, me.login
        );
        let target = row.target.as_str();
        let secret = match action {
            ApprovalAction::TempPassword | ApprovalAction::EmergencyPassword => {
                let (password, phc) = password.ok_or_else(conflict_changed)?;
                let found = work
                    .user_by_login(target)
                    .await?
                    .ok_or_else(|| AdminError::NoSuchUser(target.to_owned()))?;
                let u = work
                    .user_for_update(found.id)
                    .await?
                    .ok_or_else(|| AdminError::NoSuchUser(target.to_owned()))?;
                let issued = if action == ApprovalAction::TempPassword {
                    self.apply_temporary_password(&mut work, actor, &u, password, &phc, &approval)
                        .await?
                } else {
                    self.apply_emergency_password(&mut work, actor, &u, password, &phc, &approval)
                        .await?
                };
                Some(issued)
            }
            ApprovalAction::GrantRights => {
                let (Some(iban), Some(rights)) = (&params.iban, params.rights) else {
                    return Err(StorageError::corrupt("a rights request without its rights").into());
                };
                self.apply_rights(&mut work, actor, target, iban, rights, true, &approval)
                    .await?;
                None
            }
            ApprovalAction::LowerSignatures => {
                let Some(count) = params.count else {
                    return Err(
                        StorageError::corrupt("a signatures request without its count").into(),
                    );
                };
                self.apply_signatures(&mut work, actor, target, count, false, &approval)
                    .await?;
                None
            }
            ApprovalAction::AddAdmin => {
                let (Some(new), Some(roles)) = (new_admin, &params.roles) else {
                    return Err(conflict_changed());
                };
                if new.login.as_str() != target {
                    return Err(conflict_changed());
                }
                self.apply_add_admin(&mut work, actor, &new, roles, &approval)
                    .await?;
                Some(self.initial_secret(new.login.as_str(), new.password))
            }
            ApprovalAction::SetRoles => {
                let Some(roles) = &params.roles else {
                    return Err(StorageError::corrupt("a roles request without its roles").into());
                };
                self.apply_set_roles(&mut work, actor, target, roles, &approval)
                    .await?;
                None
            }
            // The window opens now; `tresor-bank break-glass` uses it.
            ApprovalAction::BreakGlass => None,
        };
        self.decide(&mut work, &row, ApprovalStatus::Approved, me.id, now)
            .await?;
        work.record(actor.event(
            login_of_target(action, target),
            "approval",
            "approved",
            &format!(
                "#{} {} requested by {}",
                row.id,
                action.as_str(),
                row.requested_by.1
            ),
        ));
        self.commit(work).await?;
        let request = self
            .store
            .read()
            .await?
            .approval(row.id)
            .await?
            .map(|r| self.approval_view(&r))
            .ok_or_else(|| StorageError::corrupt("a request just decided is not there"))?;
        Ok(Reply::Approved { request, secret })
    }

    async fn reject(&self, actor: &Actor, me: &UserRow, roles: &[Role], id: u64) -> Answer {
        let now = self.unix_now();
        let mut work = self.begin().await?;
        let (row, action, _) = self.request_for_decision(&mut work, id).await?;
        let decision = Decision {
            action,
            status: ApprovalStatus::parse(&row.status).unwrap_or(ApprovalStatus::Rejected),
            expires_at: row.expires_at,
            on_admin: false,
            own: row.requested_by.0 == me.id,
            roles,
            now,
        };
        if let Err(refusal) = rules::may_reject(&decision) {
            return self
                .refuse_decision(work, actor, &row, action, refusal)
                .await;
        }
        self.decide(&mut work, &row, ApprovalStatus::Rejected, me.id, now)
            .await?;
        let how = if decision.own {
            "withdrawn"
        } else {
            "rejected"
        };
        work.record(actor.event(
            login_of_target(action, &row.target),
            "approval",
            how,
            &format!(
                "#{} {} requested by {}",
                row.id,
                action.as_str(),
                row.requested_by.1
            ),
        ));
        self.commit(work).await?;
        Ok(Reply::Done)
    }

    /// Records a pending request's decision with its MAC, if it is still pending.
    async fn decide(
        &self,
        work: &mut Work,
        row: &ApprovalRow,
        to: ApprovalStatus,
        by: i64,
        now: i64,
    ) -> Result<(), Refusal> {
        let tag = self
            .binding
            .decision_tag(row.id, &row.tag, to.as_str(), by, now);
        if work
            .decide_approval(
                row.id,
                ApprovalStatus::Pending.as_str(),
                to.as_str(),
                by,
                now,
                &tag,
            )
            .await?
        {
            Ok(())
        } else {
            Err(conflict_changed())
        }
    }

    /// An initial password as the admin who made the account is shown it.
    fn initial_secret(&self, login: &str, password: tresor_core::Password) -> IssuedSecret {
        let expires = self.unix_now() + secs(self.policy.initial_password_seconds);
        IssuedSecret {
            login: login.to_owned(),
            kind: "initial".into(),
            secret: password,
            expires_at: u64::try_from(expires).unwrap_or(0),
        }
    }

    async fn refuse_decision(
        &self,
        mut work: Work,
        actor: &Actor,
        row: &ApprovalRow,
        action: ApprovalAction,
        refusal: DecisionRefusal,
    ) -> Answer {
        work.record(actor.event(
            login_of_target(action, &row.target),
            "approval",
            &format!("refused: {}", refusal.message()),
            &format!("#{} {}", row.id, action.as_str()),
        ));
        self.commit(work).await?;
        let code = match refusal {
            DecisionRefusal::NotPending => ErrorCode::Conflict,
            _ => ErrorCode::Forbidden,
        };
        Err(Refusal(ApiError::new(code, refusal.message())))
    }

    /// Records what an operator did on the bank's host beside its database (issued a TLS
    /// certificate for a load balancer), so that the audit log says who did it and when.
    pub async fn record_operator_action(
        &self,
        actor: &Actor,
        event: &'static str,
        detail: &str,
    ) -> Result<(), AdminError> {
        let mut work = self.begin().await?;
        work.record(actor.event("", event, "done", detail));
        self.commit(work).await?;
        Ok(())
    }

    /// Opens the local break-glass mode for `who` (the OS user), for `reason`: with an
    /// approved window when the bank has two security officers who could have approved one
    /// (the window is used up), alone otherwise. Audited either way; the actor it returns
    /// names every action that follows.
    pub async fn open_break_glass(&self, who: &str, reason: &str) -> Result<Actor, AdminError> {
        let actor = Actor::break_glass(who);
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().any(char::is_control) {
            return Err(AdminError::Invalid(
                "say why (--reason), in printable text".into(),
            ));
        }
        let officers = self.usable_security_officers().await?;
        let now = self.unix_now();
        let mut work = self.begin().await?;
        let detail = if rules::break_glass_needs_window(officers) {
            let windows = work.open_break_glass().await?;
            let Some(window) = windows
                .into_iter()
                .find(|w| self.request_holds(w) && now <= w.expires_at)
            else {
                work.record(actor.event(
                    "",
                    "break_glass",
                    "refused: no approved window",
                    &format!("reason: {reason}"),
                ));
                self.commit(work).await?;
                return Err(AdminError::NoBreakGlassWindow);
            };
            let Some((by, approver, _)) = &window.decided else {
                return Err(AdminError::NoBreakGlassWindow);
            };
            let used = ApprovalStatus::Used.as_str();
            let tag = self
                .binding
                .decision_tag(window.id, &window.tag, used, *by, now);
            if !work
                .decide_approval(
                    window.id,
                    ApprovalStatus::Approved.as_str(),
                    used,
                    *by,
                    now,
                    &tag,
                )
                .await?
            {
                return Err(AdminError::NoBreakGlassWindow);
            }
            format!(
                "window #{} asked by {}, approved by {approver}; reason: {reason}",
                window.id, window.requested_by.1
            )
        } else {
            format!(
                "without a window: {officers} security officer(s) able to approve one; \
                 reason: {reason}"
            )
        };
        work.record(actor.event("", "break_glass", "opened", &detail));
        self.commit(work).await?;
        Ok(actor)
    }
}

fn sorted(mut roles: Vec<Role>) -> Vec<Role> {
    roles.sort();
    roles.dedup();
    roles
}

fn not_found(id: u64) -> Refusal {
    Refusal(ApiError::new(
        ErrorCode::NotFound,
        format!("no request #{id}"),
    ))
}

fn conflict_changed() -> Refusal {
    Refusal(ApiError::new(
        ErrorCode::Conflict,
        "the request changed meanwhile; list the requests again",
    ))
}

/// The login an audit record of a request is about (none for an account or break-glass).
fn login_of_target(action: ApprovalAction, target: &str) -> &str {
    match action {
        ApprovalAction::LowerSignatures | ApprovalAction::BreakGlass => "",
        _ => target,
    }
}

/// A request in words.
fn summary(action: Option<ApprovalAction>, target: &str, p: &Params) -> String {
    let roles = |r: &Option<Vec<Role>>| r.as_deref().map(roles_text).unwrap_or_default();
    match action {
        Some(ApprovalAction::TempPassword) => format!("temporary password for {target}"),
        Some(ApprovalAction::EmergencyPassword) => format!("emergency password for {target}"),
        Some(ApprovalAction::GrantRights) => format!(
            "grant {} on {} to {target}",
            p.rights.map(Rights::names).unwrap_or_default(),
            p.iban.as_deref().unwrap_or("?")
        ),
        Some(ApprovalAction::LowerSignatures) => format!(
            "{target}: lower signatures required to {}",
            p.count.unwrap_or_default()
        ),
        Some(ApprovalAction::AddAdmin) => format!(
            "new admin {target} ({}) with roles {}",
            p.name.as_deref().unwrap_or(""),
            roles(&p.roles)
        ),
        Some(ApprovalAction::SetRoles) => {
            format!("roles of {target} become {}", roles(&p.roles))
        }
        Some(ApprovalAction::BreakGlass) => {
            format!("break-glass window: {}", p.reason.as_deref().unwrap_or(""))
        }
        None => "unknown request".into(),
    }
}
