// Packs dist/ as the archive Perses unpacks from its plugins folder: mf-manifest.json,
// package.json and __mf/ at the root of `PersAI-<version>.tar.gz` (perses/perses
// internal/api/plugin/archive.go names the unpacked folder after the archive).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
for (const required of ['dist/mf-manifest.json', 'dist/package.json']) {
  if (!existsSync(required)) throw new Error(`${required} is missing: run rsbuild build first`);
}
mkdirSync('archive', { recursive: true });
const target = `archive/PersAI-${version}.tar.gz`;
execFileSync('tar', [
  '-czf',
  target,
  '-C',
  'dist',
  'mf-manifest.json',
  'mf-stats.json',
  'package.json',
  'README.md',
  '__mf',
]);
console.log(`wrote ${target}`);
