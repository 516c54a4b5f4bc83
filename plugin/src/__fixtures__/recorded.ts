// PersAI's recorded answers, read as the client reads them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StreamEvent } from '../api/types';

const here = join(process.cwd(), 'src', '__fixtures__');

export function recorded(name: string): string {
  return readFileSync(join(here, name), 'utf8');
}

export function recordedJson<T>(name: string): T {
  return JSON.parse(recorded(name)) as T;
}

/** The events of a recorded SSE body, as EventSource hands them over. */
export function recordedEvents(name = 'events.txt'): StreamEvent[] {
  return recorded(name)
    .split(/\r?\n\r?\n/)
    .map((block) => {
      const fields: Record<string, string> = {};
      for (const line of block.split(/\r?\n/)) {
        const at = line.indexOf(':');
        if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1).replace(/^ /, '');
      }
      return fields;
    })
    .filter((fields) => fields.event)
    .map((fields) => ({ id: fields.id ?? '', event: fields.event as StreamEvent['event'], data: JSON.parse(fields.data ?? '{}') }));
}
