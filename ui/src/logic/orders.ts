// What a user may do with an order now, from its status and the rights on its account.
import type { AccountView, OrderView } from "../bindings";

export interface OrderActions {
  sign: boolean;
  send: boolean;
}

export function orderActions(
  order: OrderView,
  account: AccountView | undefined,
  login: string,
  keySession: boolean,
): OrderActions {
  const rights = account?.rights;
  const signedByMe = order.signatures.some((s) => s.login === login);
  const signable = order.status === "draft" || order.status === "partly_signed";
  return {
    sign: !!rights?.sign && keySession && signable && !signedByMe,
    send: !!rights?.send && order.status === "signed",
  };
}

export const FINAL_STATUSES = ["accepted", "rejected"] as const;
