import { CssBaseline, ThemeProvider } from '@mui/material';
import { ChartsProvider, generateChartsTheme, getTheme } from '@perses-dev/components';
import { DatasourceResource, GlobalDatasourceResource } from '@perses-dev/core';
import { DatasourceApi, DatasourceStoreProvider } from '@perses-dev/dashboards';
import {
  BuiltinVariableContext,
  PluginRegistry,
  remotePluginLoader,
  TimeRangeProvider,
  usePlugin,
  VariableContext,
} from '@perses-dev/plugin-system';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { ReactElement } from 'react';
import { createRoot } from 'react-dom/client';

const params = new URLSearchParams(window.location.search);
window.PERSAI_URL = params.get('persai_url') ?? '/persai';
const PROJECT = params.get('project') ?? 'shop';

async function get<T>(path: string): Promise<T> {
  const response = await fetch(path, { credentials: 'include' });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return (await response.json()) as T;
}

function byKind<T extends { spec: { plugin: { kind: string } } }>(items: T[], kind?: string): T[] {
  return kind ? items.filter((item) => item.spec.plugin.kind === kind) : items;
}

function matches(
  selector: { kind: string; name?: string },
  item: { metadata: { name: string }; spec: { default: boolean; plugin: { kind: string } } }
): boolean {
  if (item.spec.plugin.kind !== selector.kind) return false;
  return selector.name ? item.metadata.name === selector.name : item.spec.default;
}

// as ui/app/src/model/datasource-api.ts builds it (no api_prefix here)
const datasourceApi: DatasourceApi = {
  buildProxyUrl: ({ project, dashboard, name }) => {
    let url = `${!project && !dashboard ? 'globaldatasources' : 'datasources'}/${encodeURIComponent(name)}`;
    if (dashboard) url = `dashboards/${encodeURIComponent(dashboard)}/${url}`;
    if (project) url = `projects/${encodeURIComponent(project)}/${url}`;
    return `/proxy/${url}`;
  },
  getDatasource: async (project, selector) =>
    (await get<DatasourceResource[]>(`/api/v1/projects/${project}/datasources`)).find((d) => matches(selector, d)),
  getGlobalDatasource: async (selector) =>
    (await get<GlobalDatasourceResource[]>('/api/v1/globaldatasources')).find((d) => matches(selector, d)),
  listDatasources: async (project, kind) =>
    byKind(await get<DatasourceResource[]>(`/api/v1/projects/${project}/datasources`), kind),
  listGlobalDatasources: async (kind) =>
    byKind(await get<GlobalDatasourceResource[]>('/api/v1/globaldatasources'), kind),
};

const theme = getTheme('light');
const chartsTheme = generateChartsTheme(theme, {});
const queryClient = new QueryClient({ defaultOptions: { queries: { refetchOnWindowFocus: false, retry: 0 } } });
const loader = remotePluginLoader('');
const variables = { state: {} };
const builtinVariables = { variables: [] };

function Explore(): ReactElement {
  const { data: plugin, error } = usePlugin('Explore', 'PersaiExplorer');
  if (error) return <p id="host-error">{String(error.message)}</p>;
  if (!plugin) return <p id="host-loading">loading the plugin…</p>;
  const Component = plugin.ExploreComponent;
  return <Component spec={{}} />;
}

function Host(): ReactElement {
  return (
    <QueryClientProvider client={queryClient}>
      <ThemeProvider theme={theme}>
        <CssBaseline />
        <ChartsProvider chartsTheme={chartsTheme}>
          <PluginRegistry pluginLoader={loader}>
            <DatasourceStoreProvider datasourceApi={datasourceApi} projectName={PROJECT}>
              <BuiltinVariableContext.Provider value={builtinVariables}>
                <VariableContext.Provider value={variables}>
                  <TimeRangeProvider timeRange={{ pastDuration: '2h' }}>
                    <main style={{ padding: 16, maxWidth: 1100 }}>
                      <Explore />
                    </main>
                  </TimeRangeProvider>
                </VariableContext.Provider>
              </BuiltinVariableContext.Provider>
            </DatasourceStoreProvider>
          </PluginRegistry>
        </ChartsProvider>
      </ThemeProvider>
    </QueryClientProvider>
  );
}

createRoot(document.getElementById('root')!).render(<Host />);
