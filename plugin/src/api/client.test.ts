import { recorded, recordedEvents, recordedJson } from '../__fixtures__/recorded';
import { Connection, PersaiClient } from './client';
import { PersaiError } from './errors';
import { Job, StreamEvent } from './types';

function answering(status: number, body: string, headers: Record<string, string> = {}) {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const fetchImpl = async (url: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    calls.push({ url: String(url), init: init ?? {} });
    return new Response(body, { status, headers: { 'content-type': 'application/json', ...headers } });
  };
  return { calls, fetchImpl: fetchImpl as typeof fetch };
}

async function refusal(status: number, body: object, headers: Record<string, string> = {}): Promise<PersaiError> {
  const { fetchImpl } = answering(status, JSON.stringify(body), headers);
  const client = new PersaiClient({ baseUrl: '/persai', fetch: fetchImpl });
  return client.investigation('f'.repeat(32)).then(
    () => {
      throw new Error('expected a refusal');
    },
    (error: PersaiError) => error
  );
}

describe('PersaiClient', () => {
  it('submits with the Perses cookies and reads the job as PersAI recorded it', async () => {
    const job = recordedJson<Job>('job.json');
    const accepted = { id: job.id, status: 'queued', conversation_id: job.conversation_id, links: {} };
    const { calls, fetchImpl } = answering(202, JSON.stringify(accepted));
    const client = new PersaiClient({ baseUrl: '/persai/', fetch: fetchImpl });
    const answer = await client.submit({
      question: job.question,
      datasource: job.datasource,
      time_range: { duration: '2h' },
    });
    expect(answer.id).toBe(job.id);
    expect(calls[0]!.url).toBe('/persai/api/v1/investigations');
    expect(calls[0]!.init.credentials).toBe('include');
    expect(calls[0]!.init.method).toBe('POST');
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({
      question: job.question,
      datasource: '/proxy/projects/shop/datasources/prom',
      time_range: { duration: '2h' },
    });

    const read = new PersaiClient({ baseUrl: '/persai', fetch: answering(200, recorded('job.json')).fetchImpl });
    const stored = await read.investigation(job.id);
    expect(stored.status).toBe('succeeded');
    expect(stored.steps[0]!.tool).toBe('execute_range_query');
  });

  it('says when to retry a 429, what is down for a 503, and to sign in again for a 401', async () => {
    const limited = await refusal(
      429,
      { error: { type: 'rate_limited', message: 'more than 60 submissions in a minute' } },
      { 'retry-after': '12' }
    );
    expect(limited.message).toBe('Too many requests (more than 60 submissions in a minute): try again in 12 s.');
    expect(limited.retryAfterS).toBe(12);
    const down = await refusal(
      503,
      { error: { type: 'store_unavailable', message: 'Redis is unavailable' } },
      { 'retry-after': '5' }
    );
    expect(down.message).toBe('Redis is unavailable. Try again in 5 s.');
    const signedOut = await refusal(401, { error: { type: 'unauthenticated', message: 'token expired' } });
    expect(signedOut.message).toBe('Your Perses session has ended: sign in again.');
    const missing = await refusal(404, { error: { type: 'not_found', message: "no investigation 'x'" } });
    expect(missing.message).toBe("Not found: no investigation 'x'");
  });

  it('names PersAI as unreachable when the request never arrives', async () => {
    const client = new PersaiClient({
      baseUrl: '/persai',
      fetch: (async () => {
        throw new TypeError('Failed to fetch');
      }) as typeof fetch,
    });
    await expect(client.cancel('a'.repeat(32))).rejects.toThrow('PersAI cannot be reached');
  });

  it('follows the stream with credentials, shows a reconnection, and stops at done', () => {
    const sources: FakeEventSource[] = [];
    class Recording extends FakeEventSource {
      constructor(url: string, init?: EventSourceInit) {
        super(url, init);
        sources.push(this);
      }
    }
    const client = new PersaiClient({ baseUrl: '/persai', EventSource: Recording as unknown as typeof EventSource });
    const events: StreamEvent[] = [];
    const states: Array<[Connection, boolean]> = [];
    client.follow('abc', { onEvent: (e) => events.push(e), onConnection: (s, again) => states.push([s, again]) });
    const source = sources[0]!;
    expect(source.url).toBe('/persai/api/v1/investigations/abc/events');
    expect(source.withCredentials).toBe(true);
    const recordedStream = recordedEvents();
    source.open();
    source.deliver(recordedStream.slice(0, 3));
    source.drop(); // the browser reconnects by itself, sending Last-Event-ID
    source.open();
    source.deliver(recordedStream.slice(3));
    expect(events.map((e) => e.id)).toEqual(recordedStream.map((e) => e.id));
    expect(states).toEqual([
      ['connecting', false],
      ['open', false],
      ['reconnecting', false],
      ['open', true],
      ['closed', false],
    ]);
    expect(source.closed).toBe(true);
  });
});

/** An EventSource driven by the test, as a browser's behaves. */
class FakeEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSED = 2;
  readyState = 0;
  closed = false;
  withCredentials: boolean;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  private listeners = new Map<string, Array<(event: MessageEvent) => void>>();

  constructor(
    readonly url: string,
    init?: EventSourceInit
  ) {
    this.withCredentials = init?.withCredentials ?? false;
  }

  addEventListener(name: string, listener: (event: MessageEvent) => void): void {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
  }

  close(): void {
    this.closed = true;
    this.readyState = this.CLOSED;
  }

  open(): void {
    this.readyState = this.OPEN;
    this.onopen?.();
  }

  drop(): void {
    this.readyState = this.CONNECTING;
    this.onerror?.();
  }

  deliver(events: StreamEvent[]): void {
    for (const event of events) {
      const message = new MessageEvent(event.event, { data: JSON.stringify(event.data), lastEventId: event.id });
      for (const listener of this.listeners.get(event.event) ?? []) listener(message);
    }
  }
}
