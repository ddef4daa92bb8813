// The administration area, shown instead of the client's screens on a session signed by an
// admin's key. Each page appears only for the roles that may use it (logic/admin.ts); the
// bank checks the roles again on every request.
import { useCallback, useEffect, useState } from "react";
import type { AdminView, ApprovalView, AuditCheck, AuditRecord, SecretView, UserDetails, UserSummary } from "../bindings";
import { asAppError, commands, run } from "../api";
import { ErrorBox, Field, Notice, ScreenTitle } from "../components";
import { useI18n } from "../context";
import type { AppError } from "../bindings";
import { type AdminPage, adminPages, canDo, dayStart, dayEnd } from "../logic/admin";

function when(unix: number) {
  return new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AppError | null>(null);
  const act = useCallback(async <T,>(f: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await f();
    } catch (err) {
      setError(asAppError(err));
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, act };
}

export function AdminArea(props: { admin: AdminView; page: AdminPage | null; go: (p: AdminPage) => void }) {
  const pages = adminPages(props.admin.roles);
  const page = props.page && pages.includes(props.page) ? props.page : pages[0];
  switch (page) {
    case "users":
      return <UsersPage admin={props.admin} />;
    case "requests":
      return <RequestsPage admin={props.admin} />;
    case "audit":
      return <AuditPage />;
    default:
      return null;
  }
}

function UsersPage({ admin }: { admin: AdminView }) {
  const { t } = useI18n();
  const [query, setQuery] = useState("");
  const [users, setUsers] = useState<UserSummary[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const { busy, error, act } = useAction();
  const find = async (e?: React.FormEvent) => {
    e?.preventDefault();
    const found = await act(() => run(commands.adminFindUsers(query.trim() || null)));
    if (found) setUsers(found);
  };
  return (
    <section data-test="admin-users">
      <ScreenTitle>{t("admin.users.title")}</ScreenTitle>
      <form className="row" onSubmit={find}>
        <Field id="admin-query" label={t("admin.users.query")} value={query} onChange={setQuery} />
        <button type="submit" id="admin-find" className="primary" disabled={busy}>
          {t("admin.users.find")}
        </button>
      </form>
      <ErrorBox error={error} />
      {users && users.length === 0 && <p>{t("admin.users.none")}</p>}
      {users && users.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("admin.users.login")}</th>
              <th scope="col">{t("admin.users.name")}</th>
              <th scope="col">{t("admin.users.status")}</th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.login} data-test="admin-user-row">
                <td>
                  <button type="button" className="link" data-login={u.login} onClick={() => setSelected(u.login)}>
                    {u.login}
                  </button>
                </td>
                <td>{u.name}</td>
                <td data-test="admin-user-status">{u.status.join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {selected && <UserPanel key={selected} login={selected} admin={admin} onChanged={() => void find()} />}
    </section>
  );
}

function UserPanel(props: { login: string; admin: AdminView; onChanged: () => void }) {
  const { t } = useI18n();
  const [details, setDetails] = useState<UserDetails | null>(null);
  const [fingerprint, setFingerprint] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const { busy, error, act } = useAction();
  const load = useCallback(async () => {
    const d = await act(() => run(commands.adminShowUser(props.login)));
    if (d) setDetails(d);
  }, [act, props.login]);
  useEffect(() => {
    void load();
  }, [load]);
  const roles = props.admin.roles;
  const isAdmin = details?.summary.status.includes("admin") ?? false;
  const done = async (f: () => Promise<unknown>, message: string) => {
    const ok = await act(f);
    if (ok !== undefined) {
      setNotice(message);
      await load();
      props.onChanged();
    }
  };
  const pending = details?.certificates.filter((c) => c.activation === "pending" && !c.revoked) ?? [];
  if (!details) return <ErrorBox error={error} />;
  return (
    <section className="card" data-test="admin-user" aria-label={props.login}>
      <h2>
        {details.summary.name} ({details.summary.login})
      </h2>
      <p data-test="admin-user-state">{details.summary.status.join(", ")}</p>
      <p>{t("admin.user.failed", { n: details.failed_logins })}</p>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error} />
      <div className="actions">
        {canDo(roles, "unlock", isAdmin) && (
          <button type="button" id="admin-unlock" disabled={busy} onClick={() => void done(() => run(commands.adminUnlock(props.login)), t("admin.user.unlocked"))}>
            {t("admin.user.unlock")}
          </button>
        )}
        {canDo(roles, "temp_password", isAdmin) && (
          <button
            type="button"
            id="admin-ask-temp"
            disabled={busy}
            onClick={() => void done(() => run(commands.adminAskPassword(props.login, false)), t("admin.user.asked"))}
          >
            {t("admin.user.askTemp")}
          </button>
        )}
        {canDo(roles, "emergency_password", isAdmin) && (
          <button
            type="button"
            id="admin-ask-emergency"
            disabled={busy}
            onClick={() => void done(() => run(commands.adminAskPassword(props.login, true)), t("admin.user.asked"))}
          >
            {t("admin.user.askEmergency")}
          </button>
        )}
        {canDo(roles, "suspend", isAdmin) && (
          <button type="button" id="admin-suspend" disabled={busy} onClick={() => void done(() => run(commands.adminSuspend(props.login)), t("admin.user.suspended"))}>
            {t("admin.user.suspend")}
          </button>
        )}
      </div>
      <h3>{t("admin.user.certificates")}</h3>
      <table>
        <thead>
          <tr>
            <th scope="col">{t("admin.cert.serial")}</th>
            <th scope="col">{t("admin.cert.valid")}</th>
            <th scope="col">{t("admin.cert.state")}</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {details.certificates.map((c) => (
            <tr key={c.serial} data-test="admin-cert">
              <td className="mono">{c.serial}</td>
              <td>
                {when(c.not_before)} — {when(c.not_after)}
              </td>
              <td>{c.revoked ? t("admin.cert.revoked", { why: c.revoked[1] }) : c.activation === "pending" ? t("admin.cert.pending") : t("admin.cert.ok")}</td>
              <td>
                {!c.revoked && canDo(roles, "revoke", isAdmin) && (
                  <button type="button" onClick={() => void done(() => run(commands.adminRevoke(c.serial)), t("admin.cert.revokedNow"))}>
                    {t("admin.cert.revoke")}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {pending.length > 0 && canDo(roles, "activate", isAdmin) && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void done(() => run(commands.adminActivate(props.login, fingerprint)), t("admin.cert.activated"));
          }}
        >
          <Field id="admin-fingerprint" label={t("admin.cert.fingerprint")} hint={t("admin.cert.fingerprintHint")} value={fingerprint} onChange={setFingerprint} />
          <button type="submit" id="admin-activate" className="primary" disabled={busy || !fingerprint.trim()}>
            {t("admin.cert.activate")}
          </button>
        </form>
      )}
      <h3>{t("admin.user.rights")}</h3>
      <ul>
        {details.rights.map(([iban, r]) => (
          <li key={iban}>
            <span className="mono">{iban}</span>:{" "}
            {(["view", "prepare", "sign", "send"] as const)
              .filter((k) => r[k])
              .map((k) => t(`rights.${k}`))
              .join(", ") || t("admin.user.noRights")}
          </li>
        ))}
      </ul>
    </section>
  );
}

function RequestsPage({ admin }: { admin: AdminView }) {
  const { t } = useI18n();
  const [requests, setRequests] = useState<ApprovalView[] | null>(null);
  const [secret, setSecret] = useState<SecretView | null>(null);
  const [copied, setCopied] = useState(false);
  const { busy, error, act } = useAction();
  const load = useCallback(async () => {
    const r = await act(() => run(commands.adminRequests()));
    if (r) setRequests(r);
  }, [act]);
  useEffect(() => {
    void load();
  }, [load]);
  const approve = async (id: number) => {
    const r = await act(() => run(commands.adminApprove(id)));
    if (r) {
      setSecret(r.secret);
      setCopied(false);
      await load();
    }
  };
  const reject = async (id: number) => {
    if ((await act(() => run(commands.adminReject(id)))) !== undefined) await load();
  };
  return (
    <section data-test="admin-requests">
      <ScreenTitle>{t("admin.requests.title")}</ScreenTitle>
      <ErrorBox error={error} />
      {secret && (
        <div className="card secret" role="alert" data-test="admin-secret">
          <p>{t("admin.secret.text", { kind: t(`admin.secret.${secret.kind}` as "admin.secret.temporary"), login: secret.login, until: when(secret.expires_at) })}</p>
          <p className="mono big" data-test="admin-secret-value">
            {secret.secret}
          </p>
          <button
            type="button"
            id="admin-copy"
            onClick={() =>
              void act(() => run(commands.copySecret(secret.secret))).then((ok) => {
                if (ok !== undefined) setCopied(true);
              })
            }
          >
            {t("admin.secret.copy")}
          </button>
          {copied && <span role="status">{t("admin.secret.copied")}</span>}
          <button type="button" id="admin-secret-done" onClick={() => setSecret(null)}>
            {t("admin.secret.done")}
          </button>
        </div>
      )}
      <button type="button" id="admin-requests-refresh" onClick={() => void load()} disabled={busy}>
        {t("common.refresh")}
      </button>
      {requests && requests.length === 0 && <p>{t("admin.requests.none")}</p>}
      {requests && requests.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">{t("admin.requests.what")}</th>
              <th scope="col">{t("admin.requests.by")}</th>
              <th scope="col">{t("admin.requests.until")}</th>
              <th scope="col">{t("admin.requests.status")}</th>
              <th scope="col" />
            </tr>
          </thead>
          <tbody>
            {requests.map((r) => {
              const own = r.requested_by === admin.login;
              const mayApprove = !own && r.approvers.some((role) => admin.roles.includes(role));
              return (
                <tr key={r.id} data-test="admin-request" data-id={r.id}>
                  <td>{r.id}</td>
                  <td>{r.summary}</td>
                  <td>{r.requested_by}</td>
                  <td>{when(r.expires_at)}</td>
                  <td data-test="admin-request-status">{r.status}</td>
                  <td>
                    {r.status === "pending" && mayApprove && (
                      <button type="button" className="primary" data-approve={r.id} disabled={busy} onClick={() => void approve(r.id)}>
                        {t("admin.requests.approve")}
                      </button>
                    )}
                    {r.status === "pending" && (own || mayApprove) && (
                      <button type="button" data-reject={r.id} disabled={busy} onClick={() => void reject(r.id)}>
                        {own ? t("admin.requests.withdraw") : t("admin.requests.reject")}
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function AuditPage() {
  const { t } = useI18n();
  const [login, setLogin] = useState("");
  const [event, setEvent] = useState("");
  const [from, setFrom] = useState("");
  const [until, setUntil] = useState("");
  const [records, setRecords] = useState<AuditRecord[] | null>(null);
  const [check, setCheck] = useState<AuditCheck | null>(null);
  const { busy, error, act } = useAction();
  const search = async (e?: React.FormEvent) => {
    e?.preventDefault();
    const r = await act(() => run(commands.adminAudit(login || null, event || null, dayStart(from), dayEnd(until))));
    if (r) setRecords(r);
  };
  useEffect(() => {
    void search();
    // Once, on opening the page.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <section data-test="admin-audit">
      <ScreenTitle>{t("admin.audit.title")}</ScreenTitle>
      <form className="row" onSubmit={search}>
        <Field id="audit-login" label={t("admin.audit.user")} value={login} onChange={setLogin} />
        <Field id="audit-event" label={t("admin.audit.event")} value={event} onChange={setEvent} />
        <Field id="audit-from" label={t("admin.audit.from")} hint="YYYY-MM-DD" value={from} onChange={setFrom} />
        <Field id="audit-until" label={t("admin.audit.until")} hint="YYYY-MM-DD" value={until} onChange={setUntil} />
        <button type="submit" id="audit-search" className="primary" disabled={busy}>
          {t("admin.audit.search")}
        </button>
        <button
          type="button"
          id="audit-verify"
          disabled={busy}
          onClick={() =>
            void act(() => run(commands.adminAuditVerify())).then((c) => {
              if (c) setCheck(c);
            })
          }
        >
          {t("admin.audit.verify")}
        </button>
      </form>
      <ErrorBox error={error} />
      {check && (
        <Notice>
          <span data-test="audit-check">{check.intact ? t("admin.audit.intact", { n: check.records }) : t("admin.audit.broken", { why: check.problem ?? "" })}</span>
        </Notice>
      )}
      {records && (
        <table>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">{t("admin.audit.at")}</th>
              <th scope="col">{t("admin.audit.actor")}</th>
              <th scope="col">{t("admin.audit.user")}</th>
              <th scope="col">{t("admin.audit.event")}</th>
              <th scope="col">{t("admin.audit.outcome")}</th>
              <th scope="col">{t("admin.audit.detail")}</th>
            </tr>
          </thead>
          <tbody>
            {records.map((r) => (
              <tr key={r.seq} data-test="audit-record">
                <td>{r.seq}</td>
                <td>{when(r.at)}</td>
                <td>{r.actor}</td>
                <td>{r.login}</td>
                <td>{r.event}</td>
                <td>{r.outcome}</td>
                <td>{r.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
