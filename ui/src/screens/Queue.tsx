// The signature queue: every order waiting for the user's signature, across accounts. Several
// are signed in one go: one summary (the count, the totals per currency, each order's amount,
// payee and digest, and the batch digest), then each order gets its own signature.
import { useCallback, useEffect, useRef, useState } from "react";
import type { AppError, BatchSummary, OrderView, SignedView } from "../bindings";
import { asAppError, commands, run } from "../api";
import { ErrorBox, Notice, ScreenTitle } from "../components";
import { useI18n } from "../context";
import { formatMinor, groupIban } from "../logic/money";

export function QueueScreen({ onChanged }: { onChanged: () => void }) {
  const { t } = useI18n();
  const [queue, setQueue] = useState<OrderView[] | null>(null);
  const [chosen, setChosen] = useState<Set<number>>(new Set());
  const [summary, setSummary] = useState<BatchSummary | null>(null);
  const [error, setError] = useState<AppError | string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const refresh = useCallback(async () => {
    try {
      setQueue(await run(commands.signatureQueue()));
      setChosen(new Set());
    } catch (err) {
      setError(asAppError(err));
    }
  }, []);
  useEffect(() => {
    void refresh();
  }, [refresh]);

  const toggle = (id: number) => {
    const next = new Set(chosen);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setChosen(next);
  };
  const all = queue !== null && queue.length > 0 && chosen.size === queue.length;

  const review = async () => {
    setError(null);
    setNotice(null);
    try {
      setSummary(await run(commands.batchSummary([...chosen])));
    } catch (err) {
      setError(asAppError(err));
    }
  };

  const sign = async (shown: BatchSummary) => {
    setSummary(null);
    setBusy(true);
    try {
      const results: SignedView[] = await run(commands.signBatch(shown));
      const refused = results.filter((r) => r.error);
      setNotice(t("queue.signed", { signed: results.length - refused.length, total: results.length }));
      if (refused.length > 0) setError(refused.map((r) => `#${r.id}: ${r.error}`).join("; "));
      await refresh();
      onChanged();
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section data-test="queue">
      <ScreenTitle>{t("queue.title")}</ScreenTitle>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error} />
      {queue && queue.length === 0 && <p>{t("queue.none")}</p>}
      {queue && queue.length > 0 && (
        <>
          <table data-test="queue-list">
            <thead>
              <tr>
                <th scope="col">
                  <input
                    type="checkbox"
                    id="queue-all"
                    aria-label={t("queue.all")}
                    checked={all}
                    onChange={() => setChosen(all ? new Set() : new Set(queue.map((o) => o.id)))}
                  />
                </th>
                <th scope="col">{t("orders.id")}</th>
                <th scope="col">{t("orders.payee")}</th>
                <th scope="col" className="num">
                  {t("orders.amount")}
                </th>
                <th scope="col">{t("orders.digest")}</th>
              </tr>
            </thead>
            <tbody>
              {queue.map((o) => (
                <tr key={o.id} data-queued={o.id}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={t("queue.choose", { id: o.id })}
                      checked={chosen.has(o.id)}
                      onChange={() => toggle(o.id)}
                    />
                  </td>
                  <td>{o.id}</td>
                  <td>
                    {o.order.payee_name}
                    <br />
                    <span className="mono small">{groupIban(o.order.payee_iban)}</span>
                  </td>
                  <td className="num">{formatMinor(o.order.amount, o.order.currency)}</td>
                  <td className="mono small">{o.short_digest}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="buttons">
            <button type="button" className="primary" id="queue-sign" disabled={busy || chosen.size === 0} onClick={() => void review()}>
              {t("queue.signChosen", { count: chosen.size })}
            </button>
          </div>
        </>
      )}
      {summary && <BatchDialog summary={summary} onCancel={() => setSummary(null)} onSign={() => void sign(summary)} />}
    </section>
  );
}

/** Everything a batch signature signs, before the user confirms. */
function BatchDialog({ summary, onSign, onCancel }: { summary: BatchSummary; onSign: () => void; onCancel: () => void }) {
  const { t } = useI18n();
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open && typeof d.showModal === "function") d.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="batch-title" data-test="batch-dialog" onCancel={onCancel} open={typeof HTMLDialogElement === "undefined" ? true : undefined}>
      <h2 id="batch-title">{t("queue.batchTitle", { count: summary.orders.length })}</h2>
      <p data-test="batch-totals">
        {summary.totals.map(([currency, amount]) => `${amount} ${currency}`).join(", ")}
      </p>
      <table>
        <tbody>
          {summary.orders.map((o) => (
            <tr key={o.id}>
              <td>#{o.id}</td>
              <td className="num">
                {o.amount} {o.currency}
              </td>
              <td>{o.payee_name}</td>
              <td className="mono small">{o.digest}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        {t("queue.batchDigest")} <span className="mono big" data-test="batch-digest">{summary.digest}</span>
      </p>
      <div className="buttons">
        <button type="button" onClick={onCancel}>
          {t("common.cancel")}
        </button>
        <button type="button" className="primary" id="confirm-batch" onClick={onSign} autoFocus>
          {t("queue.confirm", { count: summary.orders.length })}
        </button>
      </div>
    </dialog>
  );
}
