// What a person sees of an investigation, built from its record and from its event stream.

import { Evidence, Job, JobStatus, Step, StreamEvent, TERMINAL } from '../api/types';

export interface ToolCallView {
  callId: string;
  tool: string;
  arguments: Record<string, unknown>;
  status: Step['status'];
  output?: string;
  data?: Record<string, unknown>;
  durationMs?: number;
}

export interface InvestigationView {
  id: string;
  status?: JobStatus;
  /** The model's text as it streams (the answer, once it is known, replaces it). */
  text: string;
  answer?: string;
  error?: string;
  calls: ToolCallView[];
  evidence: Evidence[];
  /** Which attempt is running: a worker that died hands the job to another. */
  attempt?: number;
  done: boolean;
}

export function emptyView(id: string): InvestigationView {
  return { id, text: '', calls: [], evidence: [], done: false };
}

/** The view of a stored record (a finished job, or the state of one when it is reopened). */
export function viewOfJob(job: Job): InvestigationView {
  return {
    id: job.id,
    status: job.status,
    text: job.answer ?? '',
    answer: job.answer ?? undefined,
    error: job.error ?? undefined,
    calls: job.steps.map(callOfStep),
    evidence: job.evidence ?? [],
    done: TERMINAL.has(job.status),
  };
}

function callOfStep(step: Step): ToolCallView {
  return {
    callId: step.call_id,
    tool: step.tool,
    arguments: step.arguments,
    status: step.status,
    output: step.output ?? undefined,
    data: step.data ?? undefined,
    durationMs: step.duration_ms ?? undefined,
  };
}

/** The view after one more event of the job's stream. */
export function applyEvent(view: InvestigationView, event: StreamEvent): InvestigationView {
  const data = event.data;
  switch (event.event) {
    case 'status': {
      const status = data.status as JobStatus;
      const attempt = typeof data.attempt === 'number' ? data.attempt : view.attempt;
      // a new attempt starts over: what the earlier one streamed is not its text
      const restarted = status === 'running' && attempt !== undefined && attempt !== view.attempt;
      return { ...view, status, attempt, text: restarted && !view.answer ? '' : view.text };
    }
    case 'message_delta':
      return view.answer ? view : { ...view, text: view.text + String(data.text ?? '') };
    case 'tool_call': {
      const call: ToolCallView = {
        callId: String(data.call_id),
        tool: String(data.tool),
        arguments: (data.arguments as Record<string, unknown>) ?? {},
        status: 'running',
      };
      return { ...view, calls: [...view.calls.filter((c) => c.callId !== call.callId), call] };
    }
    case 'tool_result': {
      const callId = String(data.call_id);
      const update = (call: ToolCallView): ToolCallView =>
        call.callId !== callId
          ? call
          : {
              ...call,
              status: data.status === 'ok' ? 'ok' : 'error',
              output: typeof data.output === 'string' ? data.output : undefined,
              data: (data.data as Record<string, unknown> | null) ?? undefined,
              durationMs: typeof data.duration_ms === 'number' ? data.duration_ms : undefined,
            };
      return { ...view, calls: view.calls.map(update) };
    }
    case 'answer':
      return { ...view, answer: String(data.text ?? ''), text: String(data.text ?? '') };
    case 'error':
      return { ...view, error: String(data.message ?? 'the investigation failed') };
    case 'done':
      return { ...view, status: (data.status as JobStatus) ?? view.status, done: true };
    default:
      return view;
  }
}

/** A range query the agent ran: what to draw, over exactly the window it queried. */
export interface RangeQuery {
  query: string;
  start: string;
  end: string;
  stepSeconds?: number;
  findings: string[];
}

export interface InstantQuery {
  query: string;
  time: string;
  findings: string[];
}

export interface Charts {
  ranges: RangeQuery[];
  instants: InstantQuery[];
  /** Whether these come from the investigation's evidence (shown first) or from its calls. */
  fromEvidence: boolean;
}

/** What to draw: the evidence when the job has some, else each successful query call. */
export function chartsOf(view: InvestigationView): Charts {
  if (view.evidence.length > 0) {
    return {
      fromEvidence: true,
      ranges: view.evidence
        .filter((e) => e.kind === 'range')
        .map((e) => ({
          query: e.query,
          start: e.start,
          end: e.end,
          stepSeconds: e.step_seconds ?? undefined,
          findings: e.findings,
        })),
      instants: view.evidence
        .filter((e) => e.kind === 'instant')
        .map((e) => ({ query: e.query, time: e.end, findings: e.findings })),
    };
  }
  const ok = view.calls.filter((c) => c.status === 'ok' && c.data);
  const ranges: RangeQuery[] = [];
  const instants: InstantQuery[] = [];
  for (const call of ok) {
    const data = call.data ?? {};
    if (call.tool === 'execute_range_query' && typeof data.start === 'string' && typeof data.end === 'string') {
      const step = typeof data.step_s === 'number' ? data.step_s : undefined;
      ranges.push({ query: String(data.query), start: data.start, end: data.end, stepSeconds: step, findings: [] });
    } else if (call.tool === 'execute_instant_query' && typeof data.time === 'string') {
      instants.push({ query: String(data.query), time: data.time, findings: [] });
    }
  }
  return { ranges, instants, fromEvidence: false };
}
