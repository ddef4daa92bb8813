// Payment orders: the list with statuses, a form to prepare one, signing after a summary of
// exactly what is signed (computed by the app from the order's content), and sending.
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import type { AppError, Counterparty, ImportView, OrderView, Overview, SessionView, SigningSummary, Template } from "../bindings";
import { asAppError, commands, run } from "../api";
import { ErrorBox, Field, Notice, ScreenTitle } from "../components";
import { useI18n } from "../context";
import { emptyOrder, missingOrderField, type OrderForm } from "../logic/forms";
import { formatMinor, groupIban } from "../logic/money";
import { orderActions } from "../logic/orders";
import type { Key } from "../i18n";

export function OrdersScreen({ overview, session, onChanged }: { overview: Overview; session: SessionView; onChanged: () => void }) {
  const { t } = useI18n();
  const preparable = overview.menus === "full" ? overview.accounts.filter((a) => a.rights.prepare) : [];
  const [orders, setOrders] = useState<OrderView[] | null>(null);
  const [form, setForm] = useState<OrderForm>(emptyOrder(preparable[0]?.iban ?? "", preparable[0]?.currency ?? "UAH"));
  const [error, setError] = useState<AppError | string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [summary, setSummary] = useState<SigningSummary | null>(null);
  const [templates, setTemplates] = useState<Template[]>([]);
  const [counterparties, setCounterparties] = useState<Counterparty[]>([]);
  const [templateName, setTemplateName] = useState("");

  const loadDirectory = useCallback(async () => {
    if (preparable.length === 0) return;
    try {
      setTemplates(await run(commands.listTemplates()));
      setCounterparties(await run(commands.listCounterparties()));
    } catch {
      // The lists only help fill the form; an order can be typed without them.
    }
  }, [preparable.length]);
  useEffect(() => {
    void loadDirectory();
  }, [loadDirectory]);

  const fromTemplate = (id: string) => {
    const tpl = templates.find((x) => String(x.id) === id)?.content;
    if (!tpl) return;
    setForm({
      payer_iban: tpl.payer_iban,
      payee_name: tpl.payee_name,
      payee_tax_code: tpl.payee_tax_code,
      payee_iban: tpl.payee_iban,
      amount: tpl.amount === null ? "" : (tpl.amount / 100).toFixed(2),
      currency: tpl.currency,
      purpose: tpl.purpose,
    });
  };
  const toCounterparty = (id: string) => {
    const c = counterparties.find((x) => String(x.id) === id)?.content;
    if (!c) return;
    setForm({ ...form, payee_name: c.name, payee_tax_code: c.tax_code, payee_iban: c.iban, purpose: c.purpose || form.purpose });
  };

  const refresh = useCallback(async () => {
    try {
      setOrders(await run(commands.listOrders(null)));
    } catch (err) {
      setError(asAppError(err));
    }
  }, []);
  useEffect(() => {
    void refresh();
  }, [refresh]);

  const act = async (what: () => Promise<string>) => {
    setError(null);
    setNotice(null);
    setBusy(true);
    try {
      setNotice(await what());
      await refresh();
      onChanged();
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setBusy(false);
    }
  };

  const prepare = (e: FormEvent) => {
    e.preventDefault();
    if (missingOrderField(form)) return setError(t("common.required"));
    void act(async () => {
      const view = await run(commands.prepareOrder(form));
      setForm(emptyOrder(form.payer_iban, form.currency));
      return t("orders.prepared", { id: view.id });
    });
  };

  const set = (k: keyof OrderForm) => (v: string) => setForm({ ...form, [k]: v });
  const accountOf = (o: OrderView) => overview.accounts.find((a) => a.iban === o.order.payer_iban);

  return (
    <section data-test="orders">
      <ScreenTitle>{t("orders.title")}</ScreenTitle>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error} />
      <h2>{t("orders.new")}</h2>
      {preparable.length === 0 ? (
        <p>{t("orders.noPrepare")}</p>
      ) : (
        <form onSubmit={prepare} className="grid" aria-busy={busy}>
          <div className="field">
            <label htmlFor="o-payer">{t("orders.payer")}</label>
            <select id="o-payer" value={form.payer_iban} onChange={(e) => set("payer_iban")(e.target.value)}>
              {preparable.map((a) => (
                <option key={a.iban} value={a.iban}>
                  {groupIban(a.iban)} · {formatMinor(a.balance, a.currency)}
                </option>
              ))}
            </select>
          </div>
          {templates.some((x) => x.content.payer_iban === form.payer_iban) && (
            <div className="field">
              <label htmlFor="o-template">{t("orders.fromTemplate")}</label>
              <select id="o-template" value="" onChange={(e) => fromTemplate(e.target.value)}>
                <option value="">—</option>
                {templates
                  .filter((x) => x.content.payer_iban === form.payer_iban)
                  .map((x) => (
                    <option key={x.id} value={x.id}>
                      {x.content.name}
                    </option>
                  ))}
              </select>
            </div>
          )}
          {counterparties.some((x) => x.content.account === form.payer_iban) && (
            <div className="field">
              <label htmlFor="o-counterparty">{t("orders.toCounterparty")}</label>
              <select id="o-counterparty" value="" onChange={(e) => toCounterparty(e.target.value)}>
                <option value="">—</option>
                {counterparties
                  .filter((x) => x.content.account === form.payer_iban)
                  .map((x) => (
                    <option key={x.id} value={x.id}>
                      {x.content.name} · {groupIban(x.content.iban)}
                    </option>
                  ))}
              </select>
            </div>
          )}
          <Field id="o-payee-name" label={t("orders.payeeName")} value={form.payee_name} onChange={set("payee_name")} />
          <Field id="o-payee-tax" label={t("orders.payeeTaxCode")} value={form.payee_tax_code} onChange={set("payee_tax_code")} inputMode="numeric" />
          <Field id="o-payee-iban" label={t("orders.payeeIban")} value={form.payee_iban} onChange={set("payee_iban")} />
          <Field id="o-amount" label={t("orders.amount")} value={form.amount} onChange={set("amount")} inputMode="decimal" />
          <Field id="o-currency" label={t("orders.currency")} value={form.currency} onChange={set("currency")} />
          <Field id="o-purpose" label={t("orders.purpose")} value={form.purpose} onChange={set("purpose")} />
          <div className="buttons">
            <button type="submit" className="primary" id="o-prepare" disabled={busy}>
              {t("orders.prepare")}
            </button>
            <button
              type="button"
              id="o-save-payee"
              disabled={busy}
              onClick={() =>
                act(async () => {
                  const saved = await run(commands.saveCounterparty(form));
                  await loadDirectory();
                  return t("orders.payeeSaved", { name: saved.content.name });
                })
              }
            >
              {t("orders.savePayee")}
            </button>
          </div>
          <Field id="o-template-name" label={t("orders.templateName")} value={templateName} onChange={setTemplateName} />
          <div className="buttons">
            <button
              type="button"
              id="o-save-template"
              disabled={busy || templateName.trim() === ""}
              onClick={() =>
                act(async () => {
                  const saved = await run(commands.saveTemplate(templateName, form));
                  setTemplateName("");
                  await loadDirectory();
                  return t("orders.templateSaved", { name: saved.content.name });
                })
              }
            >
              {t("orders.saveTemplate")}
            </button>
          </div>
        </form>
      )}
      {preparable.length > 0 && <ImportPanel onImported={() => void refresh()} />}
      <h2>
        {t("orders.title")}{" "}
        <button type="button" className="quiet" onClick={() => void refresh()}>
          {t("common.refresh")}
        </button>
      </h2>
      {orders && orders.length === 0 && <p>{t("orders.none")}</p>}
      {orders && orders.length > 0 && (
        <table data-test="order-list">
          <thead>
            <tr>
              <th scope="col">{t("orders.id")}</th>
              <th scope="col">{t("orders.payee")}</th>
              <th scope="col" className="num">
                {t("orders.amount")}
              </th>
              <th scope="col">{t("orders.status")}</th>
              <th scope="col">{t("orders.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {orders.map((o) => {
              const can = orderActions(o, accountOf(o), session.login, session.key_session);
              return (
                <tr key={o.id} data-order={o.id} data-status={o.status}>
                  <td>{o.id}</td>
                  <td>
                    {o.order.payee_name}
                    <br />
                    <span className="mono small">{groupIban(o.order.payee_iban)}</span>
                  </td>
                  <td className="num">{formatMinor(o.order.amount, o.order.currency)}</td>
                  <td>
                    <span className={`badge status-${o.status}`}>{t(`status.${o.status}` as Key)}</span>
                    {o.status === "rejected" && o.reject_reason && (
                      <div className="small">{t("orders.rejected", { reason: o.reject_reason })}</div>
                    )}
                  </td>
                  <td>
                    {can.sign && (
                      <button
                        type="button"
                        data-action="sign"
                        disabled={busy}
                        onClick={() => act(async () => (setSummary(await run(commands.signingSummary(o.id))), ""))}
                      >
                        {t("orders.sign")}
                      </button>
                    )}
                    {can.send && (
                      <button
                        type="button"
                        data-action="send"
                        disabled={busy}
                        onClick={() => act(async () => (await run(commands.sendOrder(o.id)), t("orders.sent", { id: o.id })))}
                      >
                        {t("orders.send")}
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {summary && (
        <SignDialog
          summary={summary}
          onCancel={() => setSummary(null)}
          onSign={() =>
            act(async () => {
              const shown = summary;
              setSummary(null);
              await run(commands.signOrder(shown));
              return t("orders.signed", { id: shown.id });
            })
          }
        />
      )}
    </section>
  );
}

/** Payment orders from accounting software: a 1C/BAS or CSV file, checked line by line; with
 * a bad line nothing is imported unless the user chose to skip bad lines. */
function ImportPanel({ onImported }: { onImported: () => void }) {
  const { t } = useI18n();
  const [path, setPath] = useState("");
  const [skip, setSkip] = useState(false);
  const [report, setReport] = useState<ImportView | null>(null);
  const [error, setError] = useState<AppError | string | null>(null);
  const [busy, setBusy] = useState(false);

  const choose = async () => {
    try {
      const chosen = await run(commands.pickOrdersFile());
      if (chosen) setPath(chosen);
    } catch (err) {
      setError(asAppError(err));
    }
  };
  const go = async () => {
    setError(null);
    setReport(null);
    setBusy(true);
    try {
      const done = await run(commands.importOrders(path, skip));
      setReport(done);
      if (done.imported) onImported();
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div data-test="import">
      <h2>{t("import.title")}</h2>
      <ErrorBox error={error} />
      <div className="grid" aria-busy={busy}>
        <Field id="imp-path" label={t("import.file")} value={path} onChange={setPath} hint={t("import.hint")} />
        <label className="check">
          <input type="checkbox" id="imp-skip" checked={skip} onChange={(e) => setSkip(e.target.checked)} /> {t("import.skip")}
        </label>
        <div className="buttons">
          <button type="button" id="imp-choose" onClick={() => void choose()}>
            {t("import.choose")}
          </button>
          <button type="button" className="primary" id="imp-run" disabled={busy || path.trim() === ""} onClick={() => void go()}>
            {t("import.run")}
          </button>
        </div>
      </div>
      {report && (
        <div data-test="import-report">
          {report.imported ? (
            <Notice>{t("import.done", { prepared: report.prepared, duplicates: report.duplicates })}</Notice>
          ) : (
            <ErrorBox error={t("import.nothing", { count: report.problems.length })} />
          )}
          {report.problems.length > 0 && (
            <ul data-test="import-problems">
              {report.problems.map((p) => (
                <li key={`${p.line}-${p.field}`}>{t("import.problem", { line: p.line, field: p.field, reason: p.reason })}</li>
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}

/** What the key will sign: amount, payee and digest, before the user confirms. */
export function SignDialog({ summary, onSign, onCancel }: { summary: SigningSummary; onSign: () => void; onCancel: () => void }) {
  const { t } = useI18n();
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open && typeof d.showModal === "function") d.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="sign-title" data-test="sign-dialog" onCancel={onCancel} open={typeof HTMLDialogElement === "undefined" ? true : undefined}>
      <h2 id="sign-title">{t("orders.signTitle")}</h2>
      <p>{t("orders.signIntro")}</p>
      <dl className="summary">
        <dt>{t("orders.amount")}</dt>
        <dd className="big" data-test="sign-amount">
          {summary.amount} {summary.currency}
        </dd>
        <dt>{t("orders.payee")}</dt>
        <dd data-test="sign-payee">{summary.payee_name}</dd>
        <dt>{t("orders.payeeIban")}</dt>
        <dd className="mono">{groupIban(summary.payee_iban)}</dd>
        <dt>{t("orders.payer")}</dt>
        <dd className="mono">{groupIban(summary.payer_iban)}</dd>
        <dt>{t("orders.digest")}</dt>
        <dd className="mono big" data-test="sign-digest">
          {summary.digest}
        </dd>
      </dl>
      <p className="hint">{t("orders.digestHint")}</p>
      <div className="buttons">
        <button type="button" onClick={onCancel}>
          {t("common.cancel")}
        </button>
        <button type="button" className="primary" id="confirm-sign" onClick={onSign} autoFocus>
          {t("orders.confirmSign")}
        </button>
      </div>
    </dialog>
  );
}

export { Notice };
