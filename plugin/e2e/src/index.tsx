// A small host page that gives a plugin what the Perses UI gives it (ui/app/src/views/explore/
// ExploreView.tsx at perses v0.54.0): the plugin registry loading remote plugins through the
// module federation runtime (`remotePluginLoader`, `/api/v1/plugins` then
// `/plugins/{name}/mf-manifest.json`), the datasource store of a project reading Perses's API
// (ui/app/src/model/datasource-api.ts), a time range, variables, theme and charts theme.
import('./bootstrap');
