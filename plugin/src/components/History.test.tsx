import { recordedJson } from '../__fixtures__/recorded';
import { ConversationSummary, InvestigationPage } from '../api/types';
import { threadsOf } from './History';
import { rowsOf } from './InstantTable';
import { saveDashboard } from './OpenAsDashboard';

describe('history', () => {
  it('groups the recorded investigations by conversation, oldest first, titled as PersAI titles them', () => {
    const page = recordedJson<InvestigationPage>('investigations.json');
    const conversations = recordedJson<ConversationSummary[]>('conversations.json');
    const threads = threadsOf(page.items, new Map(conversations.map((c) => [c.id, c.title])));
    expect(threads).toHaveLength(conversations.length);
    expect(threads.map((t) => t.jobs.length)).toEqual(threads.map(() => 1));
    expect(threads.map((t) => t.jobs[0]!.status).sort()).toEqual(['cancelled', 'succeeded']);
    const titles = new Set(conversations.map((c) => c.title));
    expect(threads.every((t) => titles.has(t.title))).toBe(true);
  });
});

describe('instant results', () => {
  it('become rows of series and values', () => {
    const rows = rowsOf({
      status: 'success',
      data: { resultType: 'vector', result: [{ metric: { __name__: 'up', job: 'api' }, value: [1, '0'] }] },
    });
    expect(rows).toEqual([{ labels: 'up{job="api"}', value: '0' }]);
    expect(rowsOf({ status: 'success', data: { resultType: 'scalar', result: [1, '42'] } })).toEqual([
      { labels: 'scalar', value: '42' },
    ]);
  });
});

describe('open as dashboard', () => {
  it('saves the recorded dashboard in its project through the Perses API, as the user', async () => {
    const { dashboard } = recordedJson<{ dashboard: { metadata: { project: string } } }>('dashboard.json');
    const calls: Array<[string, RequestInit]> = [];
    const fetchImpl = (async (url: string, init: RequestInit) => {
      calls.push([url, init]);
      return new Response('{}', { status: 200 });
    }) as unknown as typeof fetch;
    await saveDashboard(dashboard, fetchImpl);
    expect(calls[0]![0]).toBe('/api/v1/projects/shop/dashboards');
    expect(calls[0]![1].credentials).toBe('include');
    expect(JSON.parse(String(calls[0]![1].body)).kind).toBe('Dashboard');
  });

  it('says why Perses refused it', async () => {
    const fetchImpl = (async () =>
      new Response(JSON.stringify({ message: 'forbidden access: you cannot create dashboards in shop' }), {
        status: 403,
      })) as unknown as typeof fetch;
    await expect(saveDashboard({ metadata: { project: 'shop' } }, fetchImpl)).rejects.toThrow(
      'Not allowed: forbidden access: you cannot create dashboards in shop'
    );
  });
});
