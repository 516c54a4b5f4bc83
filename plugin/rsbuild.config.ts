// The module federation build Perses loads: dist/ holds mf-manifest.json, package.json (its
// `perses` section names the plugins) and __mf/, the layout of a Perses plugin folder
// (perses/perses internal/api/plugin/validate.go, plugin.go), as perses/plugins builds theirs
// (rsbuild.shared.ts there).

import { pluginModuleFederation } from '@module-federation/rsbuild-plugin';
import { defineConfig } from '@rsbuild/core';
import { pluginReact } from '@rsbuild/plugin-react';

export const PLUGIN_NAME = 'PersAI';

/** Shared with the Perses UI, which provides them (one copy each: React, MUI's emotion, the
 * Perses packages, react-query, echarts). */
export const SHARED = {
  react: { requiredVersion: '^18.2.0', singleton: true },
  'react-dom': { requiredVersion: '^18.2.0', singleton: true },
  echarts: { singleton: true },
  '@perses-dev/core': { singleton: true },
  '@perses-dev/components': { singleton: true },
  '@perses-dev/plugin-system': { singleton: true },
  '@emotion/react': { requiredVersion: '^11.11.3', singleton: true },
  '@emotion/styled': { singleton: true },
  '@tanstack/react-query': { singleton: true },
};

export default defineConfig({
  plugins: [
    pluginReact(),
    pluginModuleFederation({
      name: PLUGIN_NAME,
      dts: false,
      runtime: false,
      exposes: { './PersaiExplorer': './src/PersaiExplorer.tsx' },
      shared: SHARED,
      // where Perses serves plugin assets: /plugins/{name}/, under its api_prefix
      getPublicPath: `function() { const prefix = window.PERSES_PLUGIN_ASSETS_PATH || (window.PERSES_APP_CONFIG && window.PERSES_APP_CONFIG.api_prefix) || ""; return prefix + "/plugins/${PLUGIN_NAME}/"; }`,
    }),
  ],
  source: { entry: { main: './src/index-federation.ts' } },
  output: {
    assetPrefix: `/plugins/${PLUGIN_NAME}/`,
    copy: [{ from: 'package.json' }, { from: 'README.md' }],
    distPath: { root: 'dist', js: '__mf/js', css: '__mf/css', font: '__mf/font' },
  },
  tools: {
    htmlPlugin: false,
    rspack: (config) => {
      config.output = { ...config.output, publicPath: 'auto' };
      return config;
    },
  },
});
