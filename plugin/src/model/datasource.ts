// Datasource proxy paths (what PersAI takes) and Perses datasource selectors (what panels take).

import { DatasourceSelector } from '@perses-dev/core';

export const PROMETHEUS_KIND = 'PrometheusDatasource';

const PATH = /\/proxy\/(?:globaldatasources\/([^/]+)|projects\/([^/]+)\/(?:dashboards\/[^/]+\/)?datasources\/([^/]+))$/;

export interface ProxyPath {
  name: string;
  project?: string;
}

/** What a proxy path names (with or without Perses's `api_prefix` in front), or undefined. */
export function parseProxyPath(path: string): ProxyPath | undefined {
  const match = PATH.exec(path.replace(/\/+$/, ''));
  if (!match) return undefined;
  const [, global, project, name] = match;
  return global
    ? { name: decodeURIComponent(global) }
    : { name: decodeURIComponent(name!), project: decodeURIComponent(project!) };
}

/** The selector a Perses panel resolves in the datasource store for a proxy path. */
export function selectorOfPath(path: string): DatasourceSelector {
  return { kind: PROMETHEUS_KIND, name: parseProxyPath(path)?.name };
}
