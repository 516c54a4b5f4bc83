// The shapes of PersAI's native API (persai/server/schemas.py, persai/jobs/models.py).

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const TERMINAL: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled']);

export type TimeRange = { start: string; end: string } | { duration: string };

export interface InvestigationRequest {
  question: string;
  datasource: string;
  conversation_id?: string;
  time_range?: TimeRange;
  model?: string;
}

export interface InvestigationAccepted {
  id: string;
  status: JobStatus;
  conversation_id: string;
  links: { self: string; events: string };
}

export interface Step {
  call_id: string;
  tool: string;
  arguments: Record<string, unknown>;
  status: 'running' | 'ok' | 'error';
  output?: string | null;
  data?: Record<string, unknown> | null;
  started_at?: string;
  finished_at?: string | null;
  duration_ms?: number | null;
}

/** The successful query calls that supported the answer (present once a job has ended). */
export interface Evidence {
  tool: string;
  datasource: string;
  query: string;
  kind: 'range' | 'instant';
  start: string;
  end: string;
  step_seconds: number | null;
  findings: string[];
}

export interface Job {
  id: string;
  status: JobStatus;
  question: string;
  datasource: string;
  conversation_id: string;
  model?: string | null;
  time_range?: TimeRange | null;
  created_at: string;
  started_at?: string | null;
  finished_at?: string | null;
  answer?: string | null;
  error?: string | null;
  steps: Step[];
  evidence?: Evidence[];
}

export interface InvestigationPage {
  items: Job[];
  total: number;
  limit: number;
  offset: number;
}

export interface ConversationSummary {
  id: string;
  title: string;
  created_at: string;
}

export interface ConversationDetail extends ConversationSummary {
  messages: Array<Record<string, unknown>>;
}

/** GET /api/v1/investigations/{id}/dashboard */
export interface InvestigationDashboard {
  dashboard: {
    kind: 'Dashboard';
    metadata: { name: string; project: string };
    spec: Record<string, unknown>;
  };
  window: { start: string; end: string };
}

export type EventName = 'status' | 'message_delta' | 'tool_call' | 'tool_result' | 'answer' | 'error' | 'done';

export const EVENT_NAMES: readonly EventName[] = [
  'status',
  'message_delta',
  'tool_call',
  'tool_result',
  'answer',
  'error',
  'done',
];

export interface StreamEvent {
  id: string;
  event: EventName;
  data: Record<string, unknown>;
}
