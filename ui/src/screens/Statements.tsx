// Statements: an account and a period (with presets), the balances and turnovers, every
// movement in a table that renders only the rows on screen, and exports for accounting
// software through the native save dialog.
import { useState, type FormEvent, type UIEvent } from "react";
import type { AppError, Movement, Overview, StatementPage } from "../bindings";
import { asAppError, commands, run } from "../api";
import { ErrorBox, Field, Notice, ScreenTitle } from "../components";
import { useI18n } from "../context";
import { formatMinor, groupIban } from "../logic/money";
import { PRESETS, presetPeriod, visibleRows, type Preset } from "../logic/statements";

const ROW_HEIGHT = 36;
const VIEWPORT = 480;
const FORMATS: [string, string][] = [
  ["csv", "CSV"],
  ["pdf", "PDF"],
  ["1c", "1C / BAS"],
  ["camt053", "camt.053"],
];

export function StatementsScreen({ overview }: { overview: Overview }) {
  const { t } = useI18n();
  const viewable = overview.accounts.filter((a) => a.rights.view);
  const [account, setAccount] = useState(viewable[0]?.iban ?? "");
  const [period, setPeriod] = useState(() => presetPeriod("thisMonth", new Date()));
  const [head, setHead] = useState<StatementPage | null>(null);
  const [rows, setRows] = useState<Movement[]>([]);
  const [scrollTop, setScrollTop] = useState(0);
  const [error, setError] = useState<AppError | string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const show = async (e?: FormEvent) => {
    e?.preventDefault();
    setError(null);
    setNotice(null);
    setBusy(true);
    try {
      let page = await run(commands.statementPage(account, period.from, period.to, null));
      const all = [...page.movements];
      setHead(page);
      while (page.next) {
        page = await run(commands.statementPage(account, period.from, period.to, page.next));
        all.push(...page.movements);
      }
      setRows(all);
      setScrollTop(0);
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setBusy(false);
    }
  };

  const exportAs = async (format: string) => {
    setError(null);
    setNotice(null);
    setBusy(true);
    try {
      const done = await run(commands.exportStatement(account, period.from, period.to, format));
      if (done) setNotice(t("statements.exported", { count: done.movements, path: done.path }));
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setBusy(false);
    }
  };

  const choose = (p: Preset) => setPeriod(presetPeriod(p, new Date()));
  const { first, last } = visibleRows(scrollTop, VIEWPORT, ROW_HEIGHT, rows.length);
  const currency = head?.currency ?? "";

  return (
    <section data-test="statements">
      <ScreenTitle>{t("statements.title")}</ScreenTitle>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error} />
      {viewable.length === 0 ? (
        <p>{t("statements.noAccounts")}</p>
      ) : (
        <form onSubmit={show} className="grid" aria-busy={busy}>
          <div className="field">
            <label htmlFor="st-account">{t("statements.account")}</label>
            <select id="st-account" value={account} onChange={(e) => setAccount(e.target.value)}>
              {viewable.map((a) => (
                <option key={a.iban} value={a.iban}>
                  {groupIban(a.iban)} · {a.holder}
                </option>
              ))}
            </select>
          </div>
          <div className="buttons" role="group" aria-label={t("statements.presets")}>
            {PRESETS.map((p) => (
              <button key={p} type="button" className="quiet" data-preset={p} onClick={() => choose(p)}>
                {t(`statements.preset.${p}`)}
              </button>
            ))}
          </div>
          <Field id="st-from" label={t("statements.from")} value={period.from} onChange={(v) => setPeriod({ ...period, from: v })} hint={t("statements.dayHint")} />
          <Field id="st-to" label={t("statements.to")} value={period.to} onChange={(v) => setPeriod({ ...period, to: v })} hint={t("statements.dayHint")} />
          <div className="buttons">
            <button type="submit" className="primary" id="st-show" disabled={busy}>
              {t("statements.show")}
            </button>
          </div>
        </form>
      )}
      {head && (
        <>
          <dl className="summary" data-test="statement-totals">
            <dt>{t("statements.opening")}</dt>
            <dd data-test="st-opening">{formatMinor(head.opening, currency)}</dd>
            <dt>{t("statements.debits")}</dt>
            <dd data-test="st-debits">{formatMinor(head.debits, currency)}</dd>
            <dt>{t("statements.credits")}</dt>
            <dd data-test="st-credits">{formatMinor(head.credits, currency)}</dd>
            <dt>{t("statements.closing")}</dt>
            <dd data-test="st-closing">{formatMinor(head.closing, currency)}</dd>
          </dl>
          <div className="buttons" role="group" aria-label={t("statements.export")}>
            {FORMATS.map(([f, label]) => (
              <button key={f} type="button" data-export={f} disabled={busy} onClick={() => void exportAs(f)}>
                {t("statements.exportAs", { format: label })}
              </button>
            ))}
          </div>
          {rows.length === 0 ? (
            <p>{t("statements.none")}</p>
          ) : (
            <div
              className="scroll-table"
              data-test="statement-rows"
              data-count={rows.length}
              style={{ maxHeight: VIEWPORT, overflowY: "auto" }}
              onScroll={(e: UIEvent<HTMLDivElement>) => setScrollTop(e.currentTarget.scrollTop)}
            >
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t("statements.date")}</th>
                    <th scope="col">{t("orders.id")}</th>
                    <th scope="col">{t("statements.counterparty")}</th>
                    <th scope="col">{t("orders.purpose")}</th>
                    <th scope="col" className="num">
                      {t("statements.debit")}
                    </th>
                    <th scope="col" className="num">
                      {t("statements.credit")}
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {first > 0 && <tr style={{ height: first * ROW_HEIGHT }} aria-hidden="true" />}
                  {rows.slice(first, last).map((m) => (
                    <tr key={m.id} data-movement={m.id} style={{ height: ROW_HEIGHT }}>
                      <td>{m.value_date}</td>
                      <td>{m.doc_number}</td>
                      <td title={groupIban(m.counterparty_iban)}>{m.counterparty_name}</td>
                      <td className="small" title={m.purpose}>
                        {m.purpose}
                      </td>
                      <td className="num">{m.direction === "debit" ? formatMinor(m.amount, currency) : ""}</td>
                      <td className="num">{m.direction === "credit" ? formatMinor(m.amount, currency) : ""}</td>
                    </tr>
                  ))}
                  {last < rows.length && <tr style={{ height: (rows.length - last) * ROW_HEIGHT }} aria-hidden="true" />}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}
