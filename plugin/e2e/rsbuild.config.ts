// The host page of the browser test (tests/integration/test_plugin_browser.py): an app, not a
// plugin; it loads the plugins with @perses-dev/plugin-system's module federation runtime.
import { defineConfig } from '@rsbuild/core';
import { pluginReact } from '@rsbuild/plugin-react';

export default defineConfig({
  plugins: [pluginReact()],
  source: { entry: { index: './e2e/src/index.tsx' } },
  html: { title: 'PersAI plugin host', mountId: 'root' },
  output: { distPath: { root: 'e2e/dist' }, assetPrefix: '/' },
  performance: { chunkSplit: { strategy: 'all-in-one' } },
});
