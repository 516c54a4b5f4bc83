// The module federation entry: the exposed modules are loaded on demand by the host.
import('./bootstrap');
