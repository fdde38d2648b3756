/**
 * What a service operation answers: a value, or a refusal with the HTTP status the protocol
 * uses for it and one line for the person reading the job log. Each route turns a refusal into
 * its protocol's error shape (JSON message, Twirp error, Azure XML error).
 */
export type RefusalStatus = 400 | 401 | 403 | 404 | 409 | 413 | 429;

export interface Refusal {
  ok: false;
  status: RefusalStatus;
  message: string;
}

export type Outcome<T extends object = object> = ({ ok: true } & T) | Refusal;

export function refuse(status: RefusalStatus, message: string): Refusal {
  return { ok: false, status, message };
}
