// An instant query the agent ran, evaluated again at the same moment through the Perses
// datasource proxy, shown as a small table of series and values.

import {
  Alert,
  Box,
  CircularProgress,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import { DatasourceSelector } from '@perses-dev/core';
import { useDatasourceClient } from '@perses-dev/plugin-system';
import { useQuery } from '@tanstack/react-query';
import { ReactElement } from 'react';
import { InstantQuery } from '../model/investigation';
import { Findings } from './Findings';

const MAX_ROWS = 20;

/** What this component needs of the Prometheus plugin's datasource client. */
export interface InstantClient {
  instantQuery(params: { query: string; time?: number }): Promise<InstantResponse>;
}

export interface InstantResponse {
  status: string;
  error?: string;
  data?: { resultType: string; result: unknown };
}

export interface Row {
  labels: string;
  value: string;
}

export function rowsOf(response: InstantResponse): Row[] {
  const data = response.data;
  if (!data) return [];
  if (data.resultType === 'vector' && Array.isArray(data.result)) {
    return (data.result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((item) => ({
      labels: labelsOf(item.metric),
      value: item.value[1],
    }));
  }
  if ((data.resultType === 'scalar' || data.resultType === 'string') && Array.isArray(data.result)) {
    return [{ labels: data.resultType, value: String((data.result as [number, string])[1]) }];
  }
  return [];
}

function labelsOf(metric: Record<string, string>): string {
  const { __name__: name, ...rest } = metric;
  const pairs = Object.entries(rest).map(([k, v]) => `${k}="${v}"`);
  return `${name ?? ''}{${pairs.join(', ')}}`;
}

export function InstantTable({
  instant,
  datasource,
}: {
  instant: InstantQuery;
  datasource: DatasourceSelector;
}): ReactElement {
  const { data: client } = useDatasourceClient<InstantClient>(datasource);
  const time = Date.parse(instant.time) / 1000;
  const result = useQuery({
    queryKey: ['persai-instant', datasource, instant.query, time],
    enabled: client !== undefined,
    queryFn: async () => rowsOf(await client!.instantQuery({ query: instant.query, time })),
  });
  const rows = result.data ?? [];
  return (
    <Box className="persai-instant" sx={{ border: 1, borderColor: 'divider', borderRadius: 1, p: 1 }}>
      <Typography variant="caption" component="code" sx={{ display: 'block', wordBreak: 'break-all' }}>
        {instant.query}
      </Typography>
      <Typography variant="caption" color="text.secondary">
        at {instant.time}
      </Typography>
      <Findings findings={instant.findings} />
      {result.error ? (
        <Alert severity="warning">
          The query could not be run again: {String((result.error as Error).message ?? result.error)}
        </Alert>
      ) : result.isLoading ? (
        <CircularProgress size={20} aria-label="loading the values" />
      ) : (
        <Table size="small">
          <TableHead>
            <TableRow>
              <TableCell>series</TableCell>
              <TableCell align="right">value</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {rows.slice(0, MAX_ROWS).map((row, index) => (
              <TableRow key={index}>
                <TableCell sx={{ fontFamily: 'monospace' }}>{row.labels}</TableCell>
                <TableCell align="right">{row.value}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
      {rows.length > MAX_ROWS && (
        <Typography variant="caption">{rows.length - MAX_ROWS} more series not shown</Typography>
      )}
    </Box>
  );
}
