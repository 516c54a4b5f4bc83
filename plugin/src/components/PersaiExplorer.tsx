// The "PersAI" Explore view: ask, watch the investigation live, follow up, reopen past ones.

import { Box, Button, Divider, Stack, Typography } from '@mui/material';
import { ReactElement, useCallback, useEffect, useMemo, useState } from 'react';
import { PersaiClient } from '../api/client';
import { selectorOfPath } from '../model/datasource';
import { AskForm, Question } from './AskForm';
import { PersaiClientContext } from './context';
import { PickedDatasource } from './DatasourcePicker';
import { ErrorNotice } from './ErrorNotice';
import { History, Thread } from './History';
import { Investigation, InvestigationProps, investigationOf } from './Investigation';

export type PersaiExploreSpec = {
  /** PersAI's URL; default `window.PERSAI_URL`, else `/persai` on the Perses host. */
  url?: string;
};

interface Conversation {
  id?: string;
  datasource?: PickedDatasource;
  investigations: InvestigationProps[];
}

const PARAM = 'persai';

function rememberedId(): string | null {
  return new URLSearchParams(window.location.search).get(PARAM);
}

function remember(id: string | undefined): void {
  const url = new URL(window.location.href);
  if (id) url.searchParams.set(PARAM, id);
  else url.searchParams.delete(PARAM);
  window.history.replaceState(window.history.state, '', url);
}

export function PersaiExplorer({ spec }: { spec?: PersaiExploreSpec }): ReactElement {
  const client = useMemo(() => new PersaiClient({ baseUrl: spec?.url ?? '' }), [spec?.url]);
  return (
    <PersaiClientContext.Provider value={client}>
      <ExplorerBody client={client} />
    </PersaiClientContext.Provider>
  );
}

function ExplorerBody({ client }: { client: PersaiClient }): ReactElement {
  const [conversation, setConversation] = useState<Conversation>({ investigations: [] });
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [showHistory, setShowHistory] = useState(false);

  const open = useCallback((thread: Thread) => {
    const last = thread.jobs[thread.jobs.length - 1];
    if (!last) return;
    setConversation({
      id: thread.conversationId,
      datasource: { selector: selectorOfPath(last.datasource), path: last.datasource },
      investigations: thread.jobs.map(investigationOf),
    });
    remember(last.id);
    setShowHistory(false);
  }, []);

  // a reload (or a shared link) reopens the investigation it showed, live if still running
  useEffect(() => {
    const id = rememberedId();
    if (!id) return;
    client
      .investigation(id)
      .then((job) => open({ conversationId: job.conversation_id, title: job.question, jobs: [job] }), setError);
  }, [client, open]);

  const ask = async (question: Question): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      const accepted = await client.submit({
        question: question.question,
        datasource: question.datasource.path,
        time_range: question.timeRange,
        ...(conversation.id ? { conversation_id: conversation.id } : {}),
      });
      const item = { id: accepted.id, question: question.question, datasource: question.datasource.path };
      setConversation((current) => ({
        id: accepted.conversation_id,
        datasource: question.datasource,
        investigations: current.id === accepted.conversation_id ? [...current.investigations, item] : [item],
      }));
      remember(accepted.id);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const startOver = (): void => {
    setConversation({ investigations: [] });
    remember(undefined);
  };

  return (
    <Stack className="persai-explorer" gap={2} sx={{ width: '100%' }}>
      <Stack direction="row" gap={1} alignItems="center">
        <Typography variant="h6" sx={{ flexGrow: 1 }}>
          PersAI
        </Typography>
        {conversation.investigations.length > 0 && <Button onClick={startOver}>New question</Button>}
        <Button onClick={() => setShowHistory(!showHistory)}>{showHistory ? 'Hide history' : 'History'}</Button>
      </Stack>
      {showHistory && <History onOpen={open} />}
      {conversation.investigations.length === 0 && <AskForm onAsk={(q) => void ask(q)} busy={busy} />}
      {error !== undefined && <ErrorNotice error={error} />}
      {conversation.investigations.map((item) => (
        <Box key={item.id}>
          <Investigation {...item} />
          <Divider sx={{ mt: 2 }} />
        </Box>
      ))}
      {conversation.datasource && conversation.investigations.length > 0 && (
        <AskForm onAsk={(q) => void ask(q)} followUp={{ datasource: conversation.datasource }} busy={busy} />
      )}
    </Stack>
  );
}
