// A question about the chosen datasource over the Explore time range (or a follow-up).

import { Button, Stack, TextField, Typography } from '@mui/material';
import { isRelativeTimeRange } from '@perses-dev/core';
import { useTimeRange } from '@perses-dev/plugin-system';
import { FormEvent, ReactElement, useState } from 'react';
import { TimeRange } from '../api/types';
import { DatasourcePicker, PickedDatasource } from './DatasourcePicker';

export interface Question {
  question: string;
  datasource: PickedDatasource;
  timeRange: TimeRange;
}

export function AskForm({
  onAsk,
  followUp,
  busy,
}: {
  onAsk: (question: Question) => void;
  followUp?: { datasource: PickedDatasource };
  busy?: boolean;
}): ReactElement {
  const { timeRange, absoluteTimeRange } = useTimeRange();
  const [datasource, setDatasource] = useState<PickedDatasource>();
  const [question, setQuestion] = useState('');
  const chosen = followUp?.datasource ?? datasource;
  const range: TimeRange = isRelativeTimeRange(timeRange)
    ? { duration: timeRange.pastDuration }
    : { start: absoluteTimeRange.start.toISOString(), end: absoluteTimeRange.end.toISOString() };
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    if (!chosen || !question.trim()) return;
    onAsk({ question: question.trim(), datasource: chosen, timeRange: range });
    setQuestion('');
  };
  return (
    <Stack
      component="form"
      className={followUp ? 'persai-follow-up' : 'persai-ask'}
      onSubmit={submit}
      direction="row"
      gap={1}
      alignItems="center"
      flexWrap="wrap"
    >
      {!followUp && <DatasourcePicker value={datasource} onChange={setDatasource} />}
      <TextField
        size="small"
        sx={{ flexGrow: 1, minWidth: 280 }}
        label={followUp ? 'Ask a follow-up' : 'Ask PersAI about your metrics'}
        name="question"
        value={question}
        onChange={(e) => setQuestion(e.target.value)}
      />
      <Typography variant="caption" color="text.secondary">
        {'duration' in range ? `last ${range.duration}` : `${range.start} → ${range.end}`}
      </Typography>
      <Button type="submit" variant="contained" disabled={busy || !chosen || !question.trim()}>
        {followUp ? 'Follow up' : 'Investigate'}
      </Button>
    </Stack>
  );
}
