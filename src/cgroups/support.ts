// What husk can apply of linux.resources on this host, decided before create makes anything:
// the layout's manager refuses, by name, every field it cannot apply (a v2-only file on a v1
// host, a v1-only knob on a v2 host, a controller that is not mounted). Nothing asked for is
// ever dropped silently.
export { checkResources, limitsRequested } from './index';
