// OCI hooks. Each gets the container's state as JSON on stdin. prestart, createRuntime,
// poststart and poststop run in husk's (the runtime's) namespaces; createContainer and
// startContainer run in the container's namespaces: their program is opened here, then a
// small plan joins the init's namespaces and execs it there (src/linux/plan.ts style).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { HUSK_BIN } from '../host/huskBin';
import type { Hook } from '../spec/types';
import { NAMESPACES } from '../linux/namespaces';
import { native } from '../native';
import { launch } from './launch';
import { trace, tracing } from '../host/trace';
import { log } from '../host/log';
import type { Spec, State } from '../spec/types';

export type HookKind = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';

/** Where to run container-namespace hooks: the init's pid and its namespace types. */
export interface ContainerNamespaces {
  pid: number;
  types: string[];
}

const MAX_OUTPUT = 4096;

function describe(kind: HookKind, index: number, hook: Hook) {
  return `${kind} hook ${index} (${JSON.stringify(hook.path)})`;
}

function outcome(kind: HookKind, index: number, hook: Hook, code: number | null, signal: string | number | null, timedOut: boolean, output: string): HuskError | undefined {
  const name = describe(kind, index, hook);
  const tail = output.trim() ? `: ${output.trim().split('\n').slice(-3).join(' / ').slice(0, 400)}` : '';
  if (timedOut) return new HuskError(`${name}: timed out after ${hook.timeout}s`);
  if (signal) return new HuskError(`${name}: killed by signal ${signal}${tail}`);
  if (code !== 0) return new HuskError(`${name}: exit status ${code}${tail}`);
  return undefined;
}

function runInRuntime(kind: HookKind, index: number, hook: Hook, input: string): Promise<HuskError | undefined> {
  return new Promise((resolve) => {
    const [argv0, ...args] = hook.args && hook.args.length ? hook.args : [hook.path];
    const env: Record<string, string> = {};
    for (const e of hook.env ?? []) {
      const i = e.indexOf('=');
      if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
    }
    let output = '';
    let timedOut = false;
    const child = spawn(hook.path, args, { argv0, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const collect = (b: Buffer) => {
      output = (output + b.toString()).slice(-MAX_OUTPUT);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    const timer = hook.timeout ? setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, hook.timeout * 1000) : undefined;
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      resolve(new HuskError(`${describe(kind, index, hook)}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve(outcome(kind, index, hook, code, signal, timedOut, output));
    });
  });
}

/** What a hook of husk's own does, given its arguments after the verb and the container's state. */
export type OwnHook = (args: string[], state: State) => Promise<void> | void;

/**
 * Hooks husk writes into the bundles it makes (`husk network attach|detach`, `husk image
 * unbundle`): when the hook's program is this very husk and this process knows the verb, the
 * work is done here, without starting a second husk (a Node process costs tens of
 * milliseconds). The network verbs are always known; the image layer, above this one, adds
 * `image unbundle` while it runs a container (doOwnHook). Anywhere else the hook runs as any
 * other: a `husk` process.
 */
const ownHooks = new Map<string, OwnHook>([
  ['network attach', async (args, state) => {
    const { attach } = require('../network/attach') as typeof import('../network/attach');
    const { parseAttachArgs } = require('../network/options') as typeof import('../network/options');
    await attach(parseAttachArgs(args), state);
  }],
  ['network detach', async (_args, state) => {
    const { detach } = require('../network/attach') as typeof import('../network/attach');
    await detach(state);
  }],
]);

export function doOwnHook(verb: string, fn: OwnHook) {
  ownHooks.set(verb, fn);
}

function ownHook(hook: Hook): { verb: string; fn: OwnHook } | undefined {
  const args = hook.args ?? [];
  const verb = `${args[1]} ${args[2]}`;
  const fn = ownHooks.get(verb);
  if (!fn) return undefined;
  try {
    if (fs.realpathSync(hook.path) !== fs.realpathSync(HUSK_BIN)) return undefined;
  } catch {
    return undefined;
  }
  return { verb, fn };
}

async function runOwnHook(kind: HookKind, index: number, hook: Hook, own: { verb: string; fn: OwnHook }, state: State): Promise<HuskError | undefined> {
  trace('husk', `${describe(kind, index, hook)} is husk's own \`${own.verb}\`: done in this process`,
    { kind: 'ownHook', hook: kind, verb: own.verb });
  try {
    await own.fn((hook.args ?? []).slice(3), state);
    return undefined;
  } catch (err) {
    // Its own words: the user asked for a network (or a bundle), not for a hook.
    return err instanceof HuskError ? err : new HuskError(`${own.verb}: ${reason(err)}`);
  }
}

async function runInContainer(kind: HookKind, index: number, hook: Hook, input: string, ns: ContainerNamespaces): Promise<HuskError | undefined> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-hook-'));
  const stdinFile = path.join(dir, 'stdin');
  const outFile = path.join(dir, 'output');
  fs.writeFileSync(stdinFile, input);
  const stdinFd = fs.openSync(stdinFile, 'r');
  const outFd = fs.openSync(outFile, 'w');
  try {
    const { buildHookPlan } = require('../linux/planHooks') as typeof import('../linux/planHooks');
    const plan = buildHookPlan(hook, { name: describe(kind, index, hook), pid: ns.pid, types: ns.types, stdinFd, outFd, trace: tracing() });
    // Cloned by husk itself, even under the front door: husk waits for it.
    const { pid, sock } = await launch(plan, {}, { local: true });
    fs.closeSync(sock);
    let timedOut = false;
    const timer = hook.timeout ? setTimeout(() => {
      timedOut = true;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, hook.timeout * 1000) : undefined;
    const status = await native.waitpidAsync(pid);
    if (timer) clearTimeout(timer);
    return outcome(kind, index, hook, status.code, status.signal, timedOut, fs.readFileSync(outFile, 'utf8'));
  } finally {
    fs.closeSync(stdinFd);
    fs.closeSync(outFd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs the hooks of one kind in order. The first failure stops them and is returned as
 * the error (the caller decides whether it is fatal: it is for prestart, createRuntime,
 * createContainer and startContainer; a warning for poststart and poststop).
 */
export async function runHooks(kind: HookKind, hooks: Hook[] | undefined, state: State, ns?: ContainerNamespaces): Promise<HuskError | undefined> {
  const input = JSON.stringify(state);
  for (const [index, hook] of (hooks ?? []).entries()) {
    trace('husk', `hook ${kind}[${index}] ${hook.path} ${ns ? 'in the container namespaces' : ''}`.trimEnd(),
      { kind: 'hook', hook: kind, path: hook.path, inContainer: Boolean(ns) });
    const own = ns ? undefined : ownHook(hook);
    const err = ns ? await runInContainer(kind, index, hook, input, ns)
      : own ? await runOwnHook(kind, index, hook, own, state)
        : await runInRuntime(kind, index, hook, input);
    if (err) return err;
  }
  return undefined;
}

/** Namespace types the container's init has (new or joined); hooks that run inside join them. */
function namespaceTypes(spec: Spec): string[] {
  return (spec.linux?.namespaces ?? []).map((n) => n.type).filter((t) => t in NAMESPACES);
}

export async function fatalHooks(kind: HookKind, spec: Spec, state: State, inContainer: boolean) {
  const hooks = spec.hooks?.[kind];
  if (!hooks?.length) return;
  const ns = inContainer && state.pid ? { pid: state.pid, types: namespaceTypes(spec) } : undefined;
  // Inside the container's pid namespace its init is pid 1, and that is what such a hook sees.
  if (ns && spec.linux?.namespaces?.some((n) => n.type === 'pid' && !n.path)) state = { ...state, pid: 1 };
  const err = await runHooks(kind, hooks, state, ns);
  if (err) throw err;
}

export async function warningHooks(kind: HookKind, spec: Spec, state: State) {
  const err = await runHooks(kind, spec.hooks?.[kind], state);
  if (err) log.warn(err.message);
}
