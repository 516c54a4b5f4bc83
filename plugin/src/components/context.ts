import { createContext, useContext } from 'react';
import { PersaiClient } from '../api/client';

export const PersaiClientContext = createContext<PersaiClient | undefined>(undefined);

export function usePersaiClient(): PersaiClient {
  const client = useContext(PersaiClientContext);
  if (client === undefined) throw new Error('PersaiClientContext is missing');
  return client;
}
