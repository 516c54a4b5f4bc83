// A range query the agent ran, drawn as a Perses TimeSeriesChart panel over exactly the window it
// queried, its data fetched through the Perses datasource proxy as any Perses panel fetches it.

import { Alert, Box, CircularProgress, Typography } from '@mui/material';
import { DatasourceSelector, TimeSeriesData } from '@perses-dev/core';
import {
  DataQueriesProvider,
  PanelPlugin,
  TimeRangeProvider,
  useDataQueries,
  usePlugin,
} from '@perses-dev/plugin-system';
import { ReactElement, useMemo } from 'react';
import { RangeQuery } from '../model/investigation';
import { useWidth } from './useWidth';
import { Findings } from './Findings';

const HEIGHT = 260;
const CHART_SPEC = { legend: { position: 'bottom', mode: 'list' } };

export interface RangeChartProps {
  range: RangeQuery;
  datasource: DatasourceSelector;
}

export function RangeChart({ range, datasource }: RangeChartProps): ReactElement {
  const timeRange = useMemo(
    () => ({ start: new Date(range.start), end: new Date(range.end) }),
    [range.start, range.end]
  );
  const definitions = useMemo(
    () => [
      {
        kind: 'TimeSeriesQuery',
        spec: {
          plugin: {
            kind: 'PrometheusTimeSeriesQuery',
            spec: {
              query: range.query,
              datasource,
              ...(range.stepSeconds ? { minStep: `${Math.max(1, Math.ceil(range.stepSeconds))}s` } : {}),
            },
          },
        },
      },
    ],
    [range.query, range.stepSeconds, datasource]
  );
  const stepMs = (range.stepSeconds ?? 0) * 1000 || undefined;
  return (
    <Box
      className="persai-chart"
      data-query={range.query}
      sx={{ border: 1, borderColor: 'divider', borderRadius: 1, p: 1 }}
    >
      <Typography variant="caption" component="code" sx={{ display: 'block', wordBreak: 'break-all' }}>
        {range.query}
      </Typography>
      <Typography variant="caption" color="text.secondary">
        {range.start} → {range.end}
      </Typography>
      <Findings findings={range.findings} />
      <TimeRangeProvider timeRange={timeRange}>
        <DataQueriesProvider definitions={definitions} options={{ suggestedStepMs: stepMs, mode: 'range' }}>
          <ChartBody />
        </DataQueriesProvider>
      </TimeRangeProvider>
    </Box>
  );
}

function ChartBody(): ReactElement {
  const [ref, width] = useWidth<HTMLDivElement>();
  const { data: plugin, error: pluginError } = usePlugin('Panel', 'TimeSeriesChart');
  const { queryResults, isLoading, errors } = useDataQueries('TimeSeriesQuery');
  const results = queryResults
    .filter((r) => r.data !== undefined)
    .map((r) => ({ definition: r.definition, data: r.data as TimeSeriesData }));
  const series = results.reduce((count, r) => count + (r.data.series?.length ?? 0), 0);
  const failure = pluginError ?? errors.find(Boolean);
  const Panel = (plugin as PanelPlugin | undefined)?.PanelComponent;
  return (
    <Box
      ref={ref}
      className="persai-chart-body"
      data-series={series}
      data-loading={isLoading || !Panel}
      sx={{ height: HEIGHT, position: 'relative' }}
    >
      {failure ? (
        <Alert severity="warning">The chart could not be drawn: {messageOf(failure)}</Alert>
      ) : isLoading || !Panel ? (
        <CircularProgress size={24} aria-label="loading the chart" />
      ) : series === 0 ? (
        <Typography color="text.secondary">No data in this window.</Typography>
      ) : (
        width > 0 && <Panel spec={CHART_SPEC} contentDimensions={{ width, height: HEIGHT }} queryResults={results} />
      )}
    </Box>
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
