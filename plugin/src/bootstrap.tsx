// Nothing to start on its own: Perses loads the exposed plugin (./PersaiExplorer).
export {};
