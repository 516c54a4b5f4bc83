export { PersaiExplorer } from './PersaiExplorer';
export { PersaiClient, DEFAULT_BASE_URL } from './api/client';
export { PersaiError } from './api/errors';
export type * from './api/types';
