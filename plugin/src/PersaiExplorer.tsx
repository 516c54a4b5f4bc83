// The Explore plugin Perses loads: "PersAI", investigations of your metrics.

import { PluginImplementation } from '@perses-dev/plugin-system';
import { PersaiExplorer as ExploreComponent, PersaiExploreSpec } from './components/PersaiExplorer';

type ExplorePlugin = PluginImplementation<'Explore'>;

export const PersaiExplorer: ExplorePlugin = {
  ExploreComponent: ExploreComponent as ExplorePlugin['ExploreComponent'],
  createInitialOptions: (): PersaiExploreSpec => ({}),
};
