import { Alert } from '@mui/material';
import { ReactElement } from 'react';
import { PersaiError } from '../api/errors';

/** An error as a person reads it; 401 gets a way to sign in again. */
export function ErrorNotice({ error }: { error: unknown }): ReactElement {
  const message = error instanceof Error ? error.message : String(error);
  const signIn = error instanceof PersaiError && error.status === 401;
  return (
    <Alert severity="error" className="persai-error" action={signIn ? <a href="/sign-in">Sign in</a> : undefined}>
      {message}
    </Alert>
  );
}
