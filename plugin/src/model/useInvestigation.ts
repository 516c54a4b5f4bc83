// An investigation as it unfolds: its record first, then its event stream until it ends.

import { useEffect, useReducer, useState } from 'react';
import { Connection, PersaiClient } from '../api/client';
import { PersaiError } from '../api/errors';
import { StreamEvent, TERMINAL } from '../api/types';
import { applyEvent, emptyView, InvestigationView, viewOfJob } from './investigation';

type Action = { kind: 'reset'; view: InvestigationView } | { kind: 'event'; event: StreamEvent };

function reducer(view: InvestigationView, action: Action): InvestigationView {
  return action.kind === 'reset' ? action.view : applyEvent(view, action.event);
}

export interface LiveInvestigation {
  view: InvestigationView;
  connection: Connection;
  /** Set once a dropped connection was resumed (nothing was lost: Last-Event-ID). */
  reconnected: boolean;
  error?: PersaiError;
}

export function useInvestigation(client: PersaiClient, id: string): LiveInvestigation {
  const [view, dispatch] = useReducer(reducer, id, emptyView);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [reconnected, setReconnected] = useState(false);
  const [error, setError] = useState<PersaiError>();

  useEffect(() => {
    let stop: (() => void) | undefined;
    let active = true;
    const fail = (e: unknown): void => {
      if (active) setError(e instanceof PersaiError ? e : new PersaiError(String(e), 0, 'error'));
    };
    const settle = (): void => {
      // the record holds what the stream does not: the evidence, every step's data
      client.investigation(id).then((job) => active && dispatch({ kind: 'reset', view: viewOfJob(job) }), fail);
    };
    dispatch({ kind: 'reset', view: emptyView(id) });
    setError(undefined);
    setReconnected(false);
    client.investigation(id).then((job) => {
      if (!active) return;
      if (TERMINAL.has(job.status)) {
        dispatch({ kind: 'reset', view: viewOfJob(job) });
        setConnection('closed');
        return;
      }
      // the whole history, then live: a reopened (or reloaded) investigation resumes where it is
      stop = client.follow(id, {
        onEvent: (event) => {
          if (!active) return;
          dispatch({ kind: 'event', event });
          if (event.event === 'done') settle();
        },
        onConnection: (state, again) => {
          if (!active) return;
          setConnection(state);
          if (again) setReconnected(true);
        },
        onFailure: fail,
      });
    }, fail);
    return () => {
      active = false;
      stop?.();
    };
  }, [client, id]);

  return { view, connection, reconnected, error };
}
