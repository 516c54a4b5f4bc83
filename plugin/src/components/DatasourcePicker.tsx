// The Prometheus datasources the user can see in Perses (global ones and the project's), from
// the datasource store Perses gives its plugins; a choice becomes the proxy path PersAI takes.

import { FormControl, InputLabel, ListSubheader, MenuItem, Select } from '@mui/material';
import { DatasourceSelector } from '@perses-dev/core';
import { useDatasourceStore, useListDatasourceSelectItems } from '@perses-dev/plugin-system';
import { ReactElement, ReactNode } from 'react';
import { PROMETHEUS_KIND } from '../model/datasource';

export interface PickedDatasource {
  selector: DatasourceSelector;
  /** The Perses proxy path of the datasource, as Perses's own panels query it. */
  path: string;
}

interface ProxiedClient {
  options?: { datasourceUrl?: string };
}

export function DatasourcePicker({
  value,
  onChange,
}: {
  value?: PickedDatasource;
  onChange: (next: PickedDatasource) => void;
}): ReactElement {
  const { data: groups = [], isLoading } = useListDatasourceSelectItems(PROMETHEUS_KIND);
  const store = useDatasourceStore();
  const keyOf = (group: string | undefined, name: string): string => `${group ?? ''}\u0000${name}`;
  const options: ReactNode[] = [];
  const byKey = new Map<string, DatasourceSelector>();
  for (const group of groups) {
    if (group.group) options.push(<ListSubheader key={`g:${group.group}`}>{group.group}</ListSubheader>);
    for (const item of group.items) {
      const key = keyOf(group.group, item.name);
      byKey.set(key, { kind: item.selector.kind, name: item.selector.name });
      options.push(
        <MenuItem key={key} value={key}>
          {item.name}
        </MenuItem>
      );
    }
  }
  const current = value ? ([...byKey.entries()].find(([, s]) => s.name === value.selector.name)?.[0] ?? '') : '';
  const pick = async (key: string): Promise<void> => {
    const selector = byKey.get(key);
    if (!selector) return;
    const client = await store.getDatasourceClient<ProxiedClient>(selector);
    const path = client.options?.datasourceUrl;
    if (path) onChange({ selector, path: new URL(path, window.location.href).pathname });
  };
  return (
    <FormControl size="small" sx={{ minWidth: 240 }}>
      <InputLabel id="persai-datasource-label">Prometheus datasource</InputLabel>
      <Select
        labelId="persai-datasource-label"
        id="persai-datasource"
        label="Prometheus datasource"
        value={current}
        disabled={isLoading}
        onChange={(event) => void pick(String(event.target.value))}
      >
        {options}
      </Select>
    </FormControl>
  );
}
