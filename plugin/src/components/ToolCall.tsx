// One tool call of the agent: the tool, its arguments, how it went and how long it took.

import { Box, Chip, Stack, Typography } from '@mui/material';
import { ReactElement, useState } from 'react';
import { ToolCallView } from '../model/investigation';

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const STATUS_COLOR = { running: 'info', ok: 'success', error: 'error' } as const;

export function ToolCall({ call }: { call: ToolCallView }): ReactElement {
  const [open, setOpen] = useState(false);
  return (
    <Box
      className="persai-tool-call"
      data-tool={call.tool}
      data-status={call.status}
      sx={{ border: 1, borderColor: 'divider', borderRadius: 1, p: 1 }}
    >
      <Stack direction="row" gap={1} alignItems="center" flexWrap="wrap">
        <Typography fontFamily="monospace" fontWeight="bold">
          {call.tool}
        </Typography>
        <Chip size="small" label={call.status} color={STATUS_COLOR[call.status]} />
        {call.durationMs !== undefined && (
          <Typography variant="caption" className="persai-duration">
            {formatDuration(call.durationMs)}
          </Typography>
        )}
        {call.output && (
          <Chip
            size="small"
            variant="outlined"
            label={open ? 'hide what the model saw' : 'what the model saw'}
            onClick={() => setOpen(!open)}
          />
        )}
      </Stack>
      <Box component="dl" sx={{ m: 0, display: 'grid', gridTemplateColumns: 'max-content 1fr', columnGap: 1 }}>
        {Object.entries(call.arguments).map(([name, value]) => (
          <Box key={name} sx={{ display: 'contents' }}>
            <Typography component="dt" variant="caption" color="text.secondary">
              {name}
            </Typography>
            <Typography component="dd" variant="caption" fontFamily="monospace" sx={{ m: 0, wordBreak: 'break-all' }}>
              {typeof value === 'string' ? value : JSON.stringify(value)}
            </Typography>
          </Box>
        ))}
      </Box>
      {open && call.output && (
        <Box component="pre" sx={{ fontSize: 12, maxHeight: 240, overflow: 'auto', whiteSpace: 'pre-wrap' }}>
          {call.output}
        </Box>
      )}
    </Box>
  );
}
