// One investigation, live: status, tool calls, charts (evidence first), the answer as it streams.

import { Alert, Box, Button, Chip, Stack, Typography } from '@mui/material';
import { ErrorAlert, ErrorBoundary } from '@perses-dev/components';
import { DatasourceSelector } from '@perses-dev/core';
import { ReactElement, useMemo, useState } from 'react';
import { Job } from '../api/types';
import { chartsOf } from '../model/investigation';
import { selectorOfPath } from '../model/datasource';
import { useInvestigation } from '../model/useInvestigation';
import { usePersaiClient } from './context';
import { ErrorNotice } from './ErrorNotice';
import { InstantTable } from './InstantTable';
import { Markdown } from './Markdown';
import { OpenAsDashboard } from './OpenAsDashboard';
import { RangeChart } from './RangeChart';
import { ToolCall } from './ToolCall';

export interface InvestigationProps {
  id: string;
  question: string;
  datasource: string;
}

export function investigationOf(job: Job): InvestigationProps {
  return { id: job.id, question: job.question, datasource: job.datasource };
}

const STATUS_COLOR = {
  queued: 'default',
  running: 'info',
  succeeded: 'success',
  failed: 'error',
  cancelled: 'warning',
} as const;

export function Investigation({ id, question, datasource }: InvestigationProps): ReactElement {
  const client = usePersaiClient();
  const { view, connection, reconnected, error } = useInvestigation(client, id);
  const [cancelError, setCancelError] = useState<unknown>();
  const selector: DatasourceSelector = useMemo(() => selectorOfPath(datasource), [datasource]);
  const charts = chartsOf(view);
  const cancel = (): void => {
    client.cancel(id).catch(setCancelError);
  };
  return (
    <Stack
      className="persai-investigation"
      data-id={id}
      data-status={view.status ?? 'loading'}
      gap={1.5}
      sx={{ borderLeft: 3, borderColor: 'primary.main', pl: 2 }}
    >
      <Stack direction="row" gap={1} alignItems="center" flexWrap="wrap">
        <Typography variant="subtitle1" fontWeight="bold" sx={{ flexGrow: 1 }}>
          {question}
        </Typography>
        {view.status && (
          <Chip className="persai-status" label={view.status} color={STATUS_COLOR[view.status]} size="small" />
        )}
        {!view.done && view.status && (
          <Button size="small" variant="outlined" color="warning" onClick={cancel}>
            Cancel
          </Button>
        )}
      </Stack>
      {connection === 'reconnecting' && (
        <Alert severity="info" className="persai-connection">
          Connection lost; reconnecting, and resuming after the last event received…
        </Alert>
      )}
      {reconnected && connection === 'open' && (
        <Alert severity="success" className="persai-connection">
          Reconnected: resumed after the last event received, nothing missed.
        </Alert>
      )}
      {view.attempt !== undefined && view.attempt > 1 && !view.done && (
        <Typography variant="caption">Attempt {view.attempt}: a worker took the investigation over.</Typography>
      )}
      {error && <ErrorNotice error={error} />}
      {cancelError !== undefined && <ErrorNotice error={cancelError} />}
      {(charts.ranges.length > 0 || charts.instants.length > 0) && (
        <Box>
          <Typography variant="overline">{charts.fromEvidence ? 'Evidence' : 'What the agent looked at'}</Typography>
          <Stack gap={1}>
            {charts.ranges.map((range, index) => (
              <ErrorBoundary key={`r${index}`} FallbackComponent={ErrorAlert}>
                <RangeChart range={range} datasource={selector} />
              </ErrorBoundary>
            ))}
            {charts.instants.map((instant, index) => (
              <ErrorBoundary key={`i${index}`} FallbackComponent={ErrorAlert}>
                <InstantTable instant={instant} datasource={selector} />
              </ErrorBoundary>
            ))}
          </Stack>
        </Box>
      )}
      {view.calls.length > 0 && (
        <Box>
          <Typography variant="overline">Tool calls</Typography>
          <Stack gap={1}>
            {view.calls.map((call) => (
              <ToolCall key={call.callId} call={call} />
            ))}
          </Stack>
        </Box>
      )}
      {(view.answer ?? view.text) && (
        <Box className={view.answer ? 'persai-answer' : 'persai-streaming'}>
          <Typography variant="overline">{view.answer ? 'Answer' : 'Writing…'}</Typography>
          <Markdown text={view.answer ?? view.text} />
        </Box>
      )}
      {view.error && <Alert severity="error">{view.error}</Alert>}
      {view.done && charts.ranges.length > 0 && <OpenAsDashboard id={id} datasource={datasource} />}
    </Stack>
  );
}
