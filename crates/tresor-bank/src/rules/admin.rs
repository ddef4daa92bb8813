//! Who among the bank's admins may do what, and what takes a second admin ("four eyes"):
//! pure decisions over the roles the bank loaded for the admin on this request.
//!
//! Least privilege: each role gives only its work (docs/ARCHITECTURE.md has the matrix).
//! An account that is itself an admin is handled only by a security officer, so that a
//! helpdesk employee cannot unlock, or get a password for, a more powerful admin.

use tresor_core::api::Rights;
use tresor_core::api::admin::{AdminAction, Role};

/// What an admin command does, for the role check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminOp {
    /// Who am I.
    WhoAmI,
    /// Find and show users.
    ReadUsers,
    /// Create a client user.
    AddUser,
    /// Lock or unlock a user.
    LockUnlock,
    /// Full or limited menus.
    SetMenus,
    /// Ask for a temporary password.
    TempPassword,
    /// Ask for an emergency password.
    EmergencyPassword,
    /// Open accounts and list them.
    Accounts,
    /// Signatures required on an account.
    SetSignatures,
    /// Rights of users on accounts.
    ChangeRights,
    /// List certificates.
    ListCertificates,
    /// Revoke a certificate.
    RevokeCertificate,
    /// Activate a certificate from its key letter.
    ActivateCertificate,
    /// Suspend a user's certificates.
    Suspend,
    /// Read and verify the audit log.
    Audit,
    /// List admins.
    ListAdmins,
    /// Ask for a new admin, or for an admin's roles.
    AdminAccounts,
    /// Ask for a break-glass window.
    BreakGlass,
    /// List requests, and approve or reject them (the request's own rule decides which).
    Requests,
    /// Set a user's mobile number, where the SMS second step's codes go.
    SetPhone,
}

impl AdminOp {
    /// Every operation, for tables.
    pub const ALL: [AdminOp; 20] = [
        Self::WhoAmI,
        Self::ReadUsers,
        Self::AddUser,
        Self::LockUnlock,
        Self::SetMenus,
        Self::TempPassword,
        Self::EmergencyPassword,
        Self::Accounts,
        Self::SetSignatures,
        Self::ChangeRights,
        Self::ListCertificates,
        Self::RevokeCertificate,
        Self::ActivateCertificate,
        Self::Suspend,
        Self::Audit,
        Self::ListAdmins,
        Self::AdminAccounts,
        Self::BreakGlass,
        Self::Requests,
        Self::SetPhone,
    ];

    /// The operation of an action.
    pub fn of(action: &AdminAction) -> Self {
        match action {
            AdminAction::WhoAmI {} => Self::WhoAmI,
            AdminAction::FindUsers { .. } | AdminAction::ShowUser { .. } => Self::ReadUsers,
            AdminAction::AddUser { .. } => Self::AddUser,
            AdminAction::SetPhone { .. } => Self::SetPhone,
            AdminAction::LockUser { .. } | AdminAction::UnlockUser { .. } => Self::LockUnlock,
            AdminAction::SetMenus { .. } => Self::SetMenus,
            AdminAction::TempPassword { .. } => Self::TempPassword,
            AdminAction::EmergencyPassword { .. } => Self::EmergencyPassword,
            AdminAction::AddAccount { .. } | AdminAction::ListAccounts {} => Self::Accounts,
            AdminAction::SetSignatures { .. } => Self::SetSignatures,
            AdminAction::ChangeRights { .. } => Self::ChangeRights,
            AdminAction::ListCertificates { .. } => Self::ListCertificates,
            AdminAction::RevokeCertificate { .. } => Self::RevokeCertificate,
            AdminAction::ActivateCertificate { .. } => Self::ActivateCertificate,
            AdminAction::SuspendUser { .. } => Self::Suspend,
            AdminAction::AuditList { .. } | AdminAction::AuditVerify {} => Self::Audit,
            AdminAction::ListAdmins {} => Self::ListAdmins,
            AdminAction::AddAdmin { .. } | AdminAction::SetRoles { .. } => Self::AdminAccounts,
            AdminAction::BreakGlass { .. } => Self::BreakGlass,
            AdminAction::ListRequests {}
            | AdminAction::Approve { .. }
            | AdminAction::Reject { .. } => Self::Requests,
        }
    }
}

/// The roles that may do `op` (on a target that is an admin account when `on_admin`).
pub fn roles_for(op: AdminOp, on_admin: bool) -> &'static [Role] {
    use Role::{AccountManager as Am, Auditor, Helpdesk, SecurityOfficer as So};
    match (op, on_admin) {
        (AdminOp::WhoAmI | AdminOp::Requests, _) => &[Helpdesk, So, Am, Auditor],
        (AdminOp::ReadUsers, _) => &[Helpdesk, So, Am],
        (AdminOp::LockUnlock | AdminOp::TempPassword | AdminOp::Suspend, false) => &[Helpdesk, So],
        (AdminOp::LockUnlock | AdminOp::TempPassword | AdminOp::Suspend, true) => &[So],
        (AdminOp::ListCertificates, _) => &[Helpdesk, So],
        (
            AdminOp::EmergencyPassword
            | AdminOp::RevokeCertificate
            | AdminOp::ActivateCertificate
            | AdminOp::ListAdmins
            | AdminOp::AdminAccounts
            | AdminOp::BreakGlass
            // Where the second factor goes is a credential.
            | AdminOp::SetPhone,
            _,
        ) => &[So],
        // An admin account is never given account rights or menus.
        (
            AdminOp::AddUser
            | AdminOp::SetMenus
            | AdminOp::Accounts
            | AdminOp::SetSignatures
            | AdminOp::ChangeRights,
            _,
        ) => &[Am],
        (AdminOp::Audit, _) => &[Auditor],
    }
}

/// Whether an admin holding `roles` may do `op`.
pub fn may(op: AdminOp, roles: &[Role], on_admin: bool) -> bool {
    roles_for(op, on_admin).iter().any(|r| roles.contains(r))
}

/// The requests that take a second admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalAction {
    /// A temporary password (the approver gets it).
    TempPassword,
    /// An emergency password (the approver gets it).
    EmergencyPassword,
    /// Granting `sign` or `send` on an account.
    GrantRights,
    /// Lowering an account's signatures required.
    LowerSignatures,
    /// A new admin (the approver gets the initial password).
    AddAdmin,
    /// An admin's roles.
    SetRoles,
    /// A window for the local break-glass commands.
    BreakGlass,
}

impl ApprovalAction {
    /// Every action.
    pub const ALL: [ApprovalAction; 7] = [
        Self::TempPassword,
        Self::EmergencyPassword,
        Self::GrantRights,
        Self::LowerSignatures,
        Self::AddAdmin,
        Self::SetRoles,
        Self::BreakGlass,
    ];

    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TempPassword => "temp_password",
            Self::EmergencyPassword => "emergency_password",
            Self::GrantRights => "grant_rights",
            Self::LowerSignatures => "lower_signatures",
            Self::AddAdmin => "add_admin",
            Self::SetRoles => "set_roles",
            Self::BreakGlass => "break_glass",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The roles that may approve it (on a target that is an admin account when
    /// `on_admin`).
    pub fn approvers(self, on_admin: bool) -> &'static [Role] {
        use Role::{AccountManager as Am, Helpdesk, SecurityOfficer as So};
        match (self, on_admin) {
            (Self::TempPassword, false) => &[Helpdesk, So],
            (Self::GrantRights | Self::LowerSignatures, _) => &[Am],
            (
                Self::TempPassword
                | Self::EmergencyPassword
                | Self::AddAdmin
                | Self::SetRoles
                | Self::BreakGlass,
                _,
            ) => &[So],
        }
    }
}

/// Whether a rights change takes four eyes: granting `sign` or `send`.
pub fn rights_need_approval(rights: Rights, grant: bool) -> bool {
    grant && (rights.sign || rights.send)
}

/// Whether a change of an account's signatures required takes four eyes: lowering it.
pub fn signatures_need_approval(current: u8, new: u8) -> bool {
    new < current
}

/// Where a request stands, for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    /// Waiting.
    Pending,
    /// Approved (a break-glass window not yet used).
    Approved,
    /// Rejected or withdrawn.
    Rejected,
    /// A break-glass window used.
    Used,
}

impl ApprovalStatus {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Used => "used",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected, Self::Used]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// Why a decision on a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionRefusal {
    /// Already decided.
    NotPending,
    /// Past its deadline.
    Expired,
    /// The requester cannot approve their own request.
    OwnRequest,
    /// The decider's roles do not allow it.
    WrongRole,
}

impl DecisionRefusal {
    /// For the admin and the audit log.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotPending => "the request has already been decided",
            Self::Expired => "the request has expired; ask again",
            Self::OwnRequest => "a request must be approved by another admin",
            Self::WrongRole => "your roles do not allow deciding this request",
        }
    }
}

/// The facts of a decision.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// The request.
    pub action: ApprovalAction,
    /// Its status.
    pub status: ApprovalStatus,
    /// Its deadline.
    pub expires_at: i64,
    /// Whether its target is an admin account.
    pub on_admin: bool,
    /// Whether the decider filed it.
    pub own: bool,
    /// The decider's roles.
    pub roles: &'a [Role],
    /// Now.
    pub now: i64,
}

/// Whether the decider may approve.
pub fn may_approve(d: &Decision<'_>) -> Result<(), DecisionRefusal> {
    if d.status != ApprovalStatus::Pending {
        return Err(DecisionRefusal::NotPending);
    }
    if d.own {
        return Err(DecisionRefusal::OwnRequest);
    }
    if d.now > d.expires_at {
        return Err(DecisionRefusal::Expired);
    }
    if !d
        .action
        .approvers(d.on_admin)
        .iter()
        .any(|r| d.roles.contains(r))
    {
        return Err(DecisionRefusal::WrongRole);
    }
    Ok(())
}

/// Whether the decider may reject: the requester withdrawing it, or an admin who could
/// approve it, while it is pending (a late rejection is still allowed, to tidy the list).
pub fn may_reject(d: &Decision<'_>) -> Result<(), DecisionRefusal> {
    if d.status != ApprovalStatus::Pending {
        return Err(DecisionRefusal::NotPending);
    }
    if d.own
        || d.action
            .approvers(d.on_admin)
            .iter()
            .any(|r| d.roles.contains(r))
    {
        Ok(())
    } else {
        Err(DecisionRefusal::WrongRole)
    }
}

/// Whether a break-glass window is needed for the local commands: once the bank has two
/// security officers who could approve one. With fewer (a new bank, or its officers lost),
/// the local commands run alone, audited as break-glass; there are no four eyes to ask.
pub fn break_glass_needs_window(usable_security_officers: usize) -> bool {
    usable_security_officers >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::{AccountManager as Am, Auditor, Helpdesk, SecurityOfficer as So};

    /// The whole matrix: for each operation, exactly the roles that may do it, on an
    /// ordinary user and on an admin account.
    #[test]
    fn role_matrix() {
        use AdminOp::*;
        let cases: [(AdminOp, &[Role], &[Role]); 20] = [
            (
                WhoAmI,
                &[Helpdesk, So, Am, Auditor],
                &[Helpdesk, So, Am, Auditor],
            ),
            (
                Requests,
                &[Helpdesk, So, Am, Auditor],
                &[Helpdesk, So, Am, Auditor],
            ),
            (ReadUsers, &[Helpdesk, So, Am], &[Helpdesk, So, Am]),
            (AddUser, &[Am], &[Am]),
            (LockUnlock, &[Helpdesk, So], &[So]),
            (SetMenus, &[Am], &[Am]),
            (TempPassword, &[Helpdesk, So], &[So]),
            (EmergencyPassword, &[So], &[So]),
            (Accounts, &[Am], &[Am]),
            (SetSignatures, &[Am], &[Am]),
            (ChangeRights, &[Am], &[Am]),
            (ListCertificates, &[Helpdesk, So], &[Helpdesk, So]),
            (RevokeCertificate, &[So], &[So]),
            (ActivateCertificate, &[So], &[So]),
            (Suspend, &[Helpdesk, So], &[So]),
            (Audit, &[Auditor], &[Auditor]),
            (ListAdmins, &[So], &[So]),
            (AdminAccounts, &[So], &[So]),
            (BreakGlass, &[So], &[So]),
            (SetPhone, &[So], &[So]),
        ];
        assert_eq!(cases.len(), AdminOp::ALL.len());
        for (op, on_user, on_admin) in cases {
            for role in Role::ALL {
                assert_eq!(
                    may(op, &[role], false),
                    on_user.contains(&role),
                    "{op:?} {role:?}"
                );
                assert_eq!(
                    may(op, &[role], true),
                    on_admin.contains(&role),
                    "{op:?} {role:?} on an admin"
                );
            }
            assert!(!may(op, &[], false), "{op:?} with no role");
        }
        // Roles add up.
        assert!(may(AdminOp::Audit, &[Helpdesk, Auditor], false));
    }

    #[test]
    fn what_takes_four_eyes() {
        let r = |view, prepare, sign, send| Rights {
            view,
            prepare,
            sign,
            send,
        };
        let cases = [
            (r(true, true, false, false), true, false),
            (r(false, false, true, false), true, true),
            (r(false, false, false, true), true, true),
            (r(true, true, true, true), true, true),
            (r(true, true, true, true), false, false),
        ];
        for (rights, grant, want) in cases {
            assert_eq!(
                rights_need_approval(rights, grant),
                want,
                "{rights:?} {grant}"
            );
        }
        for (cur, new, want) in [(2, 1, true), (1, 2, false), (2, 2, false), (1, 1, false)] {
            assert_eq!(signatures_need_approval(cur, new), want, "{cur} → {new}");
        }
        for a in ApprovalAction::ALL {
            assert_eq!(ApprovalAction::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn approval_table() {
        let base = Decision {
            action: ApprovalAction::EmergencyPassword,
            status: ApprovalStatus::Pending,
            expires_at: 100,
            on_admin: false,
            own: false,
            roles: &[So],
            now: 50,
        };
        let cases: [(Decision<'_>, Result<(), DecisionRefusal>); 10] = [
            (base, Ok(())),
            (
                Decision { own: true, ..base },
                Err(DecisionRefusal::OwnRequest),
            ),
            (Decision { now: 101, ..base }, Err(DecisionRefusal::Expired)),
            (Decision { now: 100, ..base }, Ok(())),
            (
                Decision {
                    roles: &[Helpdesk],
                    ..base
                },
                Err(DecisionRefusal::WrongRole),
            ),
            (
                Decision {
                    status: ApprovalStatus::Approved,
                    ..base
                },
                Err(DecisionRefusal::NotPending),
            ),
            (
                Decision {
                    status: ApprovalStatus::Rejected,
                    ..base
                },
                Err(DecisionRefusal::NotPending),
            ),
            (
                Decision {
                    action: ApprovalAction::TempPassword,
                    roles: &[Helpdesk],
                    ..base
                },
                Ok(()),
            ),
            (
                Decision {
                    action: ApprovalAction::TempPassword,
                    roles: &[Helpdesk],
                    on_admin: true,
                    ..base
                },
                Err(DecisionRefusal::WrongRole),
            ),
            (
                Decision {
                    action: ApprovalAction::GrantRights,
                    roles: &[So, Helpdesk],
                    ..base
                },
                Err(DecisionRefusal::WrongRole),
            ),
        ];
        for (d, want) in cases {
            assert_eq!(may_approve(&d), want, "{d:?}");
        }
        // The requester may withdraw, a stranger to the request may not reject it.
        assert_eq!(
            may_reject(&Decision {
                own: true,
                roles: &[Helpdesk],
                ..base
            }),
            Ok(())
        );
        assert_eq!(
            may_reject(&Decision {
                roles: &[Auditor],
                ..base
            }),
            Err(DecisionRefusal::WrongRole)
        );
        assert_eq!(may_reject(&Decision { now: 500, ..base }), Ok(()));
    }

    #[test]
    fn break_glass_window() {
        for (n, want) in [(0, false), (1, false), (2, true), (5, true)] {
            assert_eq!(break_glass_needs_window(n), want, "{n}");
        }
    }
}
