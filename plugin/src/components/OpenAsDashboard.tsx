// "Open as dashboard": PersAI builds the dashboard, Perses saves it with the user's own rights.

import { Alert, Button, Link, Stack, TextField } from '@mui/material';
import { ReactElement, useState } from 'react';
import { PersaiError, describe, unreachable } from '../api/errors';
import { parseProxyPath } from '../model/datasource';
import { usePersaiClient } from './context';
import { ErrorNotice } from './ErrorNotice';

declare global {
  interface Window {
    PERSES_APP_CONFIG?: { api_prefix?: string };
  }
}

function persesPrefix(): string {
  return (typeof window !== 'undefined' && window.PERSES_APP_CONFIG?.api_prefix) || '';
}

/** POST the dashboard to Perses (`/api/v1/projects/{project}/dashboards`), as the user. */
export async function saveDashboard(
  dashboard: { metadata: { project: string } },
  fetchImpl: typeof fetch = fetch
): Promise<void> {
  const project = encodeURIComponent(dashboard.metadata.project);
  let response: Response;
  try {
    response = await fetchImpl(`${persesPrefix()}/api/v1/projects/${project}/dashboards`, {
      method: 'POST',
      credentials: 'include',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(dashboard),
    });
  } catch {
    throw unreachable();
  }
  if (response.status === 409) return; // saved before: open it
  if (!response.ok) {
    const body = (await response.json().catch(() => undefined)) as { message?: string } | undefined;
    throw describe(response.status, { error: { message: body?.message } }, response.headers.get('retry-after'));
  }
}

export function OpenAsDashboard({ id, datasource }: { id: string; datasource: string }): ReactElement {
  const client = usePersaiClient();
  const [project, setProject] = useState(parseProxyPath(datasource)?.project ?? '');
  const [link, setLink] = useState<string>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const open = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      const { dashboard, window: span } = await client.dashboard(id, project || undefined);
      await saveDashboard(dashboard);
      const { name, project: saved } = dashboard.metadata;
      const range = `start=${Date.parse(span.start)}&end=${Date.parse(span.end)}`;
      setLink(
        `${persesPrefix()}/projects/${encodeURIComponent(saved)}/dashboards/${encodeURIComponent(name)}?${range}`
      );
    } catch (e) {
      setError(e instanceof PersaiError ? e : new PersaiError(String(e), 0, 'error'));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Stack direction="row" gap={1} alignItems="center" flexWrap="wrap">
      <TextField size="small" label="Project" value={project} onChange={(e) => setProject(e.target.value)} />
      <Button size="small" variant="contained" disabled={busy} onClick={open}>
        Open as dashboard
      </Button>
      {link && (
        <Alert severity="success">
          Saved: <Link href={link}>open the dashboard</Link>
        </Alert>
      )}
      {error !== undefined && <ErrorNotice error={error} />}
    </Stack>
  );
}
