// A range query the agent ran, drawn as a Perses TimeSeriesChart panel over exactly the window it
// queried, its data fetched through the Perses datasource proxy as any Perses panel fetches it.

import { Alert, Box, CircularProgress, Typography } from '@mui/material';
import { DatasourceSelector, TimeSeriesData } from '@perses-dev/core';
import {
  PanelPlugin,
  TimeRangeProvider,
  TimeSeriesQueryPlugin,
  useDatasourceStore,
  usePlugin,
} from '@perses-dev/plugin-system';
import { useQuery } from '@tanstack/react-query';
import { ReactElement, useMemo } from 'react';
import { RangeQuery } from '../model/investigation';
import { useWidth } from './useWidth';
import { Findings } from './Findings';

const HEIGHT = 260;
const CHART_SPEC = { legend: { position: 'bottom', mode: 'list' } };
const QUERY_KIND = 'PrometheusTimeSeriesQuery';

export interface RangeChartProps {
  range: RangeQuery;
  datasource: DatasourceSelector;
}

/** The PrometheusTimeSeriesQuery spec of a range query: as a Perses dashboard would hold it. */
export function querySpec(range: RangeQuery, datasource: DatasourceSelector): Record<string, unknown> {
  return {
    query: range.query,
    datasource,
    ...(range.stepSeconds ? { minStep: `${Math.max(1, Math.ceil(range.stepSeconds))}s` } : {}),
  };
}

export function RangeChart({ range, datasource }: RangeChartProps): ReactElement {
  const timeRange = useMemo(
    () => ({ start: new Date(range.start), end: new Date(range.end) }),
    [range.start, range.end]
  );
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
        <ChartBody range={range} datasource={datasource} timeRange={timeRange} />
      </TimeRangeProvider>
    </Box>
  );
}

/** The query runs through the Prometheus plugin Perses has loaded (so through the datasource
 * proxy, as a panel's queries do), over exactly the window the agent queried; the
 * TimeSeriesChart panel plugin draws it. */
function ChartBody({
  range,
  datasource,
  timeRange,
}: RangeChartProps & { timeRange: { start: Date; end: Date } }): ReactElement {
  const [ref, width] = useWidth<HTMLDivElement>();
  const store = useDatasourceStore();
  const { data: panel, error: panelError } = usePlugin('Panel', 'TimeSeriesChart');
  const { data: queryPlugin, error: queryError } = usePlugin('TimeSeriesQuery', QUERY_KIND);
  const spec = useMemo(() => querySpec(range, datasource), [range, datasource]);
  const result = useQuery({
    queryKey: ['persai-range', spec, range.start, range.end],
    enabled: queryPlugin !== undefined,
    staleTime: Infinity, // a past window: its data does not change
    queryFn: () =>
      (queryPlugin as TimeSeriesQueryPlugin).getTimeSeriesData(spec, {
        timeRange,
        datasourceStore: store,
        variableState: {},
        suggestedStepMs: range.stepSeconds ? range.stepSeconds * 1000 : undefined,
        mode: 'range',
        refreshKey: '',
      }),
  });
  const data = result.data as TimeSeriesData | undefined;
  const series = data?.series.length ?? 0;
  const failure = panelError ?? queryError ?? result.error;
  const Panel = (panel as PanelPlugin | undefined)?.PanelComponent;
  const loading = result.isLoading || !Panel;
  const definition = { kind: 'TimeSeriesQuery', spec: { plugin: { kind: QUERY_KIND, spec } } };
  return (
    <Box
      ref={ref}
      className="persai-chart-body"
      data-series={series}
      data-loading={loading && !failure}
      sx={{ height: HEIGHT, position: 'relative' }}
    >
      {failure ? (
        <Alert severity="warning">The chart could not be drawn: {messageOf(failure)}</Alert>
      ) : loading ? (
        <CircularProgress size={24} aria-label="loading the chart" />
      ) : series === 0 ? (
        <Typography color="text.secondary">No data in this window.</Typography>
      ) : (
        width > 0 &&
        data && (
          <Panel
            spec={CHART_SPEC}
            contentDimensions={{ width, height: HEIGHT }}
            queryResults={[{ definition, data }]}
          />
        )
      )}
    </Box>
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
