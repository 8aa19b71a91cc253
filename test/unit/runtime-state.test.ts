// The state machine: every verb against every status, with runc's words (as runc 1.1.5
// prints them) where it refuses.
import { describe, expect, it } from 'vitest';
import { HuskError } from '../../src/errors';
import { STATUSES, TRANSITIONS, checkTransition, rowOf, transitionError, type Verb } from '../../src/runtime/state';

// The whole table, written out: undefined means allowed.
const expected: Record<Verb, Record<string, string | undefined>> = {
  start: {
    creating: 'cannot start a container in the creating state',
    created: undefined,
    running: 'cannot start an already running container',
    paused: 'cannot start a container in the paused state',
    stopped: 'cannot start a container that has stopped',
  },
  kill: { creating: 'container not running', created: undefined, running: undefined, paused: undefined, stopped: 'container not running' },
  'kill-all': { creating: undefined, created: undefined, running: undefined, paused: undefined, stopped: undefined },
  delete: {
    creating: 'cannot delete container c1 that is not stopped: creating',
    created: undefined,
    running: 'cannot delete container c1 that is not stopped: running',
    paused: 'cannot delete container c1 that is not stopped: paused',
    stopped: undefined,
  },
  'delete-force': { creating: undefined, created: undefined, running: undefined, paused: undefined, stopped: undefined },
  pause: { creating: 'container not running', created: undefined, running: undefined, paused: 'container not running', stopped: 'container not running' },
  resume: { creating: 'container not paused', created: 'container not paused', running: 'container not paused', paused: undefined, stopped: 'container not paused' },
  exec: {
    creating: 'cannot exec in a creating container',
    created: undefined,
    running: undefined,
    paused: 'cannot exec in a paused container (use --ignore-paused to override)',
    stopped: 'cannot exec in a stopped container',
  },
  'exec-ignore-paused': {
    creating: 'cannot exec in a creating container',
    created: undefined,
    running: undefined,
    paused: undefined,
    stopped: 'cannot exec in a stopped container',
  },
  update: { creating: 'container not running', created: undefined, running: undefined, paused: undefined, stopped: 'container not running' },
  events: {
    creating: 'container with id c1 is not running',
    created: undefined,
    running: undefined,
    paused: undefined,
    stopped: 'container with id c1 is not running',
  },
  ps: { creating: undefined, created: undefined, running: undefined, paused: undefined, stopped: undefined },
  state: { creating: undefined, created: undefined, running: undefined, paused: undefined, stopped: undefined },
};

describe('TRANSITIONS', () => {
  it('covers every verb and status', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual(Object.keys(expected).sort());
    for (const verb of Object.keys(TRANSITIONS) as Verb[]) expect(Object.keys(TRANSITIONS[verb]).sort()).toEqual([...STATUSES].sort());
  });

  for (const verb of Object.keys(expected) as Verb[]) {
    for (const status of STATUSES) {
      const message = expected[verb][status];
      it(`${verb} on ${status}: ${message ?? 'allowed'}`, () => {
        expect(transitionError(verb, status, 'c1')).toBe(message);
        if (message === undefined) expect(() => checkTransition(verb, status, 'c1')).not.toThrow();
        else expect(() => checkTransition(verb, status, 'c1')).toThrow(new HuskError(message));
      });
    }
  }
});

describe('flags', () => {
  it('pick the widened rows', () => {
    expect(rowOf('kill', { all: true })).toBe('kill-all');
    expect(rowOf('delete', { force: true })).toBe('delete-force');
    expect(rowOf('exec', { ignorePaused: true })).toBe('exec-ignore-paused');
    expect(rowOf('start', { force: true, all: true })).toBe('start');
  });

  it('lift the refusals they lift, and no others', () => {
    expect(() => checkTransition('delete', 'running', 'c1', { force: true })).not.toThrow();
    expect(() => checkTransition('kill', 'stopped', 'c1', { all: true })).not.toThrow();
    expect(() => checkTransition('exec', 'paused', 'c1', { ignorePaused: true })).not.toThrow();
    expect(() => checkTransition('exec', 'stopped', 'c1', { ignorePaused: true })).toThrow('cannot exec in a stopped container');
    expect(() => checkTransition('start', 'stopped', 'c1', { force: true })).toThrow('cannot start a container that has stopped');
  });
});
