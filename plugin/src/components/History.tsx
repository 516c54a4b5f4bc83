// The user's past conversations, each with its investigations (the native list endpoints).

import { Box, Button, List, ListItemButton, ListItemText, Typography } from '@mui/material';
import { useQuery } from '@tanstack/react-query';
import { ReactElement } from 'react';
import { Job } from '../api/types';
import { usePersaiClient } from './context';
import { ErrorNotice } from './ErrorNotice';

export interface Thread {
  conversationId: string;
  title: string;
  jobs: Job[];
}

/** Investigations grouped by conversation, newest conversation first, each oldest job first. */
export function threadsOf(jobs: Job[], titles: Map<string, string>): Thread[] {
  const threads = new Map<string, Thread>();
  for (const job of jobs) {
    const thread = threads.get(job.conversation_id) ?? {
      conversationId: job.conversation_id,
      title: titles.get(job.conversation_id) ?? job.question,
      jobs: [],
    };
    thread.jobs.unshift(job);
    threads.set(job.conversation_id, thread);
  }
  return [...threads.values()];
}

export function History({ onOpen }: { onOpen: (thread: Thread) => void }): ReactElement {
  const client = usePersaiClient();
  const result = useQuery({
    queryKey: ['persai-history', client.baseUrl],
    queryFn: async () => {
      const [page, conversations] = await Promise.all([client.investigations(100), client.conversations(100)]);
      return threadsOf(page.items, new Map(conversations.map((c) => [c.id, c.title])));
    },
  });
  return (
    <Box className="persai-history">
      <Typography variant="overline">History</Typography>
      <Button size="small" onClick={() => void result.refetch()}>
        Refresh
      </Button>
      {result.error ? <ErrorNotice error={result.error} /> : null}
      <List dense>
        {(result.data ?? []).map((thread) => (
          <ListItemButton key={thread.conversationId} onClick={() => onOpen(thread)}>
            <ListItemText
              primary={thread.title}
              secondary={`${thread.jobs.length} investigation${thread.jobs.length === 1 ? '' : 's'} · ${thread.jobs[thread.jobs.length - 1]?.status}`}
            />
          </ListItemButton>
        ))}
      </List>
    </Box>
  );
}
