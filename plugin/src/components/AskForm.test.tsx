import { DatasourceStore, DatasourceStoreContext, TimeRangeProvider } from '@perses-dev/plugin-system';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { AskForm, Question } from './AskForm';

/** What the Perses UI's datasource store answers in a project with a global datasource and one
 * of the project's (perses ui/app/src/model/datasource-api.ts builds the proxy URLs). */
function perses(): DatasourceStore {
  const urls: Record<string, string> = {
    prom: '/perses/proxy/projects/shop/datasources/prom',
    global: '/perses/proxy/globaldatasources/global',
  };
  return {
    listDatasourceSelectItems: async () => [
      { group: 'shop', items: [{ name: 'prom', selector: { kind: 'PrometheusDatasource', name: 'prom' } }] },
      { group: 'Global', items: [{ name: 'global', selector: { kind: 'PrometheusDatasource', name: 'global' } }] },
    ],
    getDatasourceClient: async <Client,>(selector: { name?: string }) =>
      ({ options: { datasourceUrl: urls[selector.name ?? ''] } }) as Client,
    getDatasource: async () => {
      throw new Error('not used');
    },
    getLocalDatasources: () => ({}),
    setLocalDatasources: () => undefined,
    getSavedDatasources: () => ({}),
    setSavedDatasources: () => undefined,
  };
}

it(
  'asks about the datasource picked, by its proxy path, over the Explore time range',
  { timeout: 20_000 },
  async () => {
    const asked: Question[] = [];
    render(
      <QueryClientProvider client={new QueryClient()}>
        <DatasourceStoreContext.Provider value={perses()}>
          <TimeRangeProvider timeRange={{ pastDuration: '1h' }}>
            <AskForm onAsk={(q) => asked.push(q)} />
          </TimeRangeProvider>
        </DatasourceStoreContext.Provider>
      </QueryClientProvider>
    );
    const investigate = screen.getByRole('button', { name: 'Investigate' });
    expect(investigate).toBeDisabled();
    await userEvent.click(await screen.findByRole('combobox'));
    const listbox = await screen.findByRole('listbox');
    expect(within(listbox).getByText('Global')).toBeInTheDocument();
    await userEvent.click(within(listbox).getByRole('option', { name: 'prom' }));
    await userEvent.type(screen.getByLabelText('Ask PersAI about your metrics'), 'Why is checkout slow?');
    await userEvent.click(investigate);
    expect(asked).toEqual([
      {
        question: 'Why is checkout slow?',
        datasource: {
          selector: { kind: 'PrometheusDatasource', name: 'prom' },
          path: '/perses/proxy/projects/shop/datasources/prom',
        },
        timeRange: { duration: '1h' },
      },
    ]);
  }
);
