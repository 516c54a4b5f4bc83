import { recordedEvents, recordedJson } from '../__fixtures__/recorded';
import { Evidence, Job } from '../api/types';
import { applyEvent, chartsOf, emptyView, viewOfJob } from './investigation';
import { parseProxyPath, selectorOfPath } from './datasource';

describe('an investigation followed over its stream', () => {
  const job = recordedJson<Job>('job.json');
  const events = recordedEvents();

  it('ends as its record says: the tool call with its duration, the answer, succeeded', () => {
    const view = events.reduce(applyEvent, emptyView(job.id));
    const stored = viewOfJob(job);
    expect(view.done).toBe(true);
    expect(view.status).toBe('succeeded');
    expect(view.answer).toBe(job.answer);
    expect(view.answer).toContain('checkout-worker');
    expect(view.calls.map((c) => [c.tool, c.status, c.arguments])).toEqual(
      stored.calls.map((c) => [c.tool, c.status, c.arguments])
    );
    expect(view.calls[0]!.durationMs).toBeGreaterThan(0);
  });

  it('streams the text before the answer, and shows the call while it runs', () => {
    const upToCall = events.slice(0, events.findIndex((e) => e.event === 'tool_call') + 1);
    const running = upToCall.reduce(applyEvent, emptyView(job.id));
    expect(running.status).toBe('running');
    expect(running.calls[0]!.status).toBe('running');
    expect(running.done).toBe(false);
    const beforeAnswer = events.slice(
      0,
      events.findIndex((e) => e.event === 'answer')
    );
    const writing = beforeAnswer.reduce(applyEvent, emptyView(job.id));
    expect(writing.answer).toBeUndefined();
    expect(job.answer!.startsWith(writing.text)).toBe(true);
  });

  it('charts each successful range query over exactly the window it queried', () => {
    const charts = chartsOf(viewOfJob(job));
    const data = job.steps[0]!.data!;
    expect(charts.fromEvidence).toBe(false);
    expect(charts.ranges).toEqual([
      { query: data.query, start: data.start, end: data.end, stepSeconds: data.step_s, findings: [] },
    ]);
    expect(charts.instants).toEqual([]);
  });

  it('shows the evidence first when the investigation has some', () => {
    const evidence: Evidence[] = [
      {
        tool: 'execute_instant_query',
        datasource: job.datasource,
        query: 'up == 0',
        kind: 'instant',
        start: '2026-01-01T11:00:00Z',
        end: '2026-01-01T11:00:00Z',
        step_seconds: null,
        findings: ['3 targets down'],
      },
    ];
    const charts = chartsOf(viewOfJob({ ...job, evidence }));
    expect(charts.fromEvidence).toBe(true);
    expect(charts.ranges).toEqual([]);
    expect(charts.instants).toEqual([{ query: 'up == 0', time: '2026-01-01T11:00:00Z', findings: ['3 targets down'] }]);
  });

  it('records a cancelled investigation as cancelled', () => {
    const cancelled = viewOfJob(recordedJson<Job>('cancelled.json'));
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.done).toBe(true);
  });
});

describe('datasource paths', () => {
  it('reads the datasource a proxy path names, with or without an api_prefix', () => {
    expect(parseProxyPath('/proxy/projects/shop/datasources/prom')).toEqual({ name: 'prom', project: 'shop' });
    expect(parseProxyPath('/perses/proxy/globaldatasources/prom')).toEqual({ name: 'prom' });
    expect(parseProxyPath('/proxy/projects/shop/dashboards/d/datasources/local')).toEqual({
      name: 'local',
      project: 'shop',
    });
    expect(parseProxyPath('http://evil.example/api')).toBeUndefined();
    expect(selectorOfPath('/proxy/globaldatasources/prom')).toEqual({ kind: 'PrometheusDatasource', name: 'prom' });
  });
});
