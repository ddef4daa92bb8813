import type { Overview, SessionView } from "../bindings";
import { Notice, ScreenTitle } from "../components";
import { useI18n } from "../context";
import { formatMinor, groupIban } from "../logic/money";

export function AccountsScreen({ overview, session }: { overview: Overview | null; session: SessionView }) {
  const { t } = useI18n();
  if (!overview) return <progress aria-label={t("common.working")} />;
  return (
    <section data-test="accounts">
      <ScreenTitle>{t("accounts.title")}</ScreenTitle>
      {overview.restricted && <Notice>{t("accounts.restricted")}</Notice>}
      {overview.menus === "limited" && <Notice>{t("accounts.limited")}</Notice>}
      {!session.key_session && <Notice>{t("accounts.otpSession")}</Notice>}
      {overview.accounts.length === 0 ? (
        <p>{t("accounts.none")}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("accounts.iban")}</th>
              <th scope="col">{t("accounts.holder")}</th>
              <th scope="col" className="num">
                {t("accounts.balance")}
              </th>
              <th scope="col">{t("accounts.signatures")}</th>
              <th scope="col">{t("accounts.rights")}</th>
            </tr>
          </thead>
          <tbody>
            {overview.accounts.map((a) => (
              <tr key={a.iban}>
                <td className="mono">{groupIban(a.iban)}</td>
                <td>{a.holder}</td>
                <td className="num" data-test="balance">
                  {formatMinor(a.balance, a.currency)}
                </td>
                <td>{a.signatures_required}</td>
                <td>
                  {(["view", "prepare", "sign", "send"] as const)
                    .filter((r) => a.rights[r])
                    .map((r) => t(`rights.${r}`))
                    .join(", ")}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
