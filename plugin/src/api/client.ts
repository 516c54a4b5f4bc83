// A typed client of PersAI's native API, sending the Perses cookies (`credentials: 'include'`).

import { describe, ErrorBody, PersaiError, unreachable } from './errors';
import {
  ConversationDetail,
  ConversationSummary,
  EVENT_NAMES,
  EventName,
  InvestigationAccepted,
  InvestigationDashboard,
  InvestigationPage,
  InvestigationRequest,
  Job,
  StreamEvent,
} from './types';

/** Where PersAI is when nothing else is said: the same host as Perses, under `/persai`. */
export const DEFAULT_BASE_URL = '/persai';

declare global {
  interface Window {
    /** Set by whoever serves Perses when PersAI is somewhere else than `/persai`. */
    PERSAI_URL?: string;
  }
}

export function baseUrlFrom(configured?: string): string {
  const chosen = configured || (typeof window !== 'undefined' ? window.PERSAI_URL : undefined) || DEFAULT_BASE_URL;
  return chosen.replace(/\/+$/, '');
}

/** The state of an event stream's connection, as a person watching it should know it. */
export type Connection = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface FollowHandlers {
  onEvent: (event: StreamEvent) => void;
  onConnection?: (state: Connection, reconnected: boolean) => void;
  /** The stream was refused (its job gone, not the caller's, or the session ended). */
  onFailure?: (error: PersaiError) => void;
}

export interface ClientOptions {
  baseUrl: string;
  fetch?: typeof fetch;
  EventSource?: typeof EventSource;
}

export class PersaiClient {
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly EventSourceImpl: typeof EventSource | undefined;

  constructor(options: ClientOptions) {
    this.baseUrl = baseUrlFrom(options.baseUrl);
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.EventSourceImpl = options.EventSource ?? (typeof EventSource !== 'undefined' ? EventSource : undefined);
  }

  submit(request: InvestigationRequest): Promise<InvestigationAccepted> {
    return this.call('POST', '/api/v1/investigations', request);
  }

  investigation(id: string): Promise<Job> {
    return this.call('GET', `/api/v1/investigations/${encodeURIComponent(id)}`);
  }

  cancel(id: string): Promise<Job> {
    return this.call('POST', `/api/v1/investigations/${encodeURIComponent(id)}/cancel`);
  }

  investigations(limit = 20, offset = 0): Promise<InvestigationPage> {
    return this.call('GET', `/api/v1/investigations?limit=${limit}&offset=${offset}`);
  }

  conversations(limit = 20, offset = 0): Promise<ConversationSummary[]> {
    return this.call('GET', `/api/v1/conversations?limit=${limit}&offset=${offset}`);
  }

  conversation(id: string): Promise<ConversationDetail> {
    return this.call('GET', `/api/v1/conversations/${encodeURIComponent(id)}`);
  }

  dashboard(id: string, project?: string): Promise<InvestigationDashboard> {
    const query = project ? `?project=${encodeURIComponent(project)}` : '';
    return this.call('GET', `/api/v1/investigations/${encodeURIComponent(id)}/dashboard${query}`);
  }

  /** Follow a job's events: the whole history, then live, until `done`. A dropped connection is
   * resumed by the browser's EventSource, which sends `Last-Event-ID`: nothing is lost or
   * repeated. Returns a function that stops following. */
  follow(id: string, handlers: FollowHandlers): () => void {
    if (this.EventSourceImpl === undefined) {
      handlers.onFailure?.(new PersaiError('This browser cannot follow live events.', 0, 'unsupported'));
      return () => undefined;
    }
    const url = `${this.baseUrl}/api/v1/investigations/${encodeURIComponent(id)}/events`;
    const source = new this.EventSourceImpl(url, { withCredentials: true });
    let opened = false;
    let dropped = false;
    let closed = false;
    const close = (): void => {
      closed = true;
      source.close();
      handlers.onConnection?.('closed', false);
    };
    handlers.onConnection?.('connecting', false);
    source.onopen = () => {
      handlers.onConnection?.('open', opened && dropped);
      opened = true;
      dropped = false;
    };
    source.onerror = () => {
      if (closed) return;
      if (source.readyState === this.EventSourceImpl!.CLOSED) {
        // EventSource gives up on an HTTP error: ask what it was
        closed = true;
        handlers.onConnection?.('closed', false);
        this.investigation(id).then(
          () => handlers.onFailure?.(new PersaiError('The live view was refused; reload to try again.', 0, 'stream')),
          (error: unknown) => handlers.onFailure?.(error instanceof PersaiError ? error : unreachable())
        );
        return;
      }
      dropped = true;
      handlers.onConnection?.('reconnecting', false);
    };
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (message) => {
        const event = message as MessageEvent<string>;
        handlers.onEvent({ id: event.lastEventId, event: name as EventName, data: parse(event.data) });
        if (name === 'done') close();
      });
    }
    return () => {
      if (!closed) close();
    };
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        credentials: 'include',
        headers:
          body === undefined
            ? { accept: 'application/json' }
            : { 'content-type': 'application/json', accept: 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw unreachable();
    }
    const text = await response.text();
    const parsed = text ? safeJson(text) : undefined;
    if (!response.ok) {
      throw describe(response.status, parsed as ErrorBody | undefined, response.headers.get('retry-after'));
    }
    return parsed as T;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parse(data: string): Record<string, unknown> {
  const value = safeJson(data);
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
}
