// PersAI's errors, as a person reads them.

export interface ErrorBody {
  error?: { type?: string; message?: string };
}

export class PersaiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly type: string,
    readonly retryAfterS?: number
  ) {
    super(message);
    this.name = 'PersaiError';
  }
}

/** What a person should read for a failed response: 401 asks to sign in again, 429 says when to
 * retry, 503 says what is down (PersAI's message names it), anything else says what went wrong. */
export function describe(status: number, body: ErrorBody | undefined, retryAfter: string | null): PersaiError {
  const message = body?.error?.message ?? '';
  const type = body?.error?.type ?? 'error';
  const retryAfterS = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined;
  const when = retryAfterS === undefined ? 'shortly' : `in ${retryAfterS} s`;
  switch (status) {
    case 401:
      return new PersaiError('Your Perses session has ended: sign in again.', status, type);
    case 403:
      return new PersaiError(`Not allowed: ${message || 'PersAI refused this request.'}`, status, type);
    case 404:
      return new PersaiError(message ? `Not found: ${message}` : 'Not found.', status, type);
    case 429:
      return new PersaiError(
        `Too many requests${message ? ` (${message})` : ''}: try again ${when}.`,
        status,
        type,
        retryAfterS
      );
    case 503:
      return new PersaiError(`${message || 'PersAI is unavailable'}. Try again ${when}.`, status, type, retryAfterS);
    default:
      if (status >= 500) {
        return new PersaiError(`PersAI failed (${status}): ${message || 'an internal error'}.`, status, type);
      }
      return new PersaiError(message || `The request was refused (${status}).`, status, type);
  }
}

export function unreachable(): PersaiError {
  return new PersaiError('PersAI cannot be reached: check your connection, or ask who runs Perses.', 0, 'network');
}
