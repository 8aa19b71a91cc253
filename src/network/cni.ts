// CNI: reading network configurations and running the standard plugins on them, as the CNI
// specification (SPEC.md of containernetworking/cni) tells a runtime to, in the way libcni
// (libcni/api.go) builds each plugin's configuration:
//
//   - a network is a list of plugins (a .conflist); a single plugin's .conf or .json file is a
//     one-plugin list. The list's "name" and "cniVersion" are written into every plugin's
//     configuration, whatever the plugin entry says itself;
//   - ADD runs the plugins in order, each getting the previous plugin's result as "prevResult";
//     the last plugin's result is the network's result;
//   - DEL runs them in reverse order, each with the ADD result as "prevResult" (from spec
//     0.4.0 on; older versions had no prevResult on DEL);
//   - CHECK (0.4.0 on, unless the list says "disableCheck") runs them in order with the ADD
//     result as "prevResult";
//   - "runtimeConfig" carries only the runtime's arguments (port mappings, ...) for which the
//     plugin says `"capabilities": {"portMappings": true}`;
//   - the plugin is the executable named by "type" in the plugin directories. It gets the
//     command and the container in CNI_* variables, its configuration on stdin, and prints
//     its result (or an error {code, msg, details}) on stdout.
//
// What the plugins Debian 12 ships (containernetworking-plugins 1.1.1, in /usr/lib/cni) do:
// they speak spec versions up to 1.0.0 (firewall only 0.4.0 and 1.0.0); host-local refuses
// CNI_ARGS keys it does not know unless IgnoreUnknown=1 is among them; portmap's CHECK fails on
// a network without IPv6 (it looks for an ip6tables chain it never made: plugins issue 819), so
// a list with portmap wants "disableCheck": true. bridge's DEL with a CNI_NETNS that no longer
// exists returns early and leaves the ipMasq rules behind: DEL while the netns is still pinned.
//
// husk keeps the ADD result itself (in its attach record), so unlike libcni nothing here
// caches results on disk: the caller hands the result back to checkNetworkList and
// delNetworkList.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { log } from '../host/log';
import { sleep } from '../host/sleep';
import { trace, tracing } from '../host/trace';

export interface NetworkList {
  name: string;
  cniVersion: string;
  /** The file it was read from. */
  file: string;
  plugins: PluginConf[];
  /** The whole list as JSON (for a .conf file: the one-plugin list it was wrapped into). */
  raw: Record<string, unknown>;
  disableCheck: boolean;
}

/** One plugin's entry of a list, as the file has it. */
export type PluginConf = Record<string, unknown> & { type: string };

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIP?: string;
}

export interface RuntimeConf {
  /** CNI_CONTAINERID: a letter or digit, then letters, digits, _ . - */
  containerId: string;
  /** CNI_NETNS: the path of the container's network namespace (may be '' for DEL). */
  netns: string;
  /** CNI_IFNAME: the interface inside the container (eth0). */
  ifName: string;
  /** CNI_ARGS, as key=value pairs. */
  args?: Array<[string, string]>;
  /** Given to the plugins that declare the capability, in their "runtimeConfig". */
  capabilityArgs?: { portMappings?: PortMapping[]; [k: string]: unknown };
}

/** The JSON result of the last plugin (in the list's cniVersion). */
export type CniResult = Record<string, unknown>;

export const DEFAULT_PLUGIN_DIRS: string[] = ['/usr/lib/cni', '/opt/cni/bin'];

/** How long a plugin may run before it is killed (tests shorten it). */
export const pluginTimeout = { ms: 60_000 };

type Command = 'ADD' | 'CHECK' | 'DEL' | 'VERSION';

// ---------------------------------------------------------------------------------------------
// Configuration files

/** The extensions libcni reads, conflists first: a name in a .conflist wins over a .conf. */
const LIST_EXTENSIONS = ['.conflist'];
const SINGLE_EXTENSIONS = ['.conf', '.json'];

/** The spec's rule for container ids, which libcni applies to network names too. */
export const ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const VERSION_PATTERN = /^(\d+)\.(\d+)\.(\d+)$/;

/**
 * Parses one configuration file's text: a list (with "plugins") or a single plugin's
 * configuration (with "type"), which becomes a one-plugin list as libcni makes it. Throws a
 * HuskError that starts with the file's name.
 */
export function parseNetwork(text: string, file: string): NetworkList {
  const bad = (why: string) => new HuskError(`${file}: ${why}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw bad(`not valid JSON: ${reason(err)}`);
  }
  if (!isObject(json)) throw bad('not a JSON object');

  const name = json.name;
  if (name === undefined) throw bad('no "name"');
  if (typeof name !== 'string') throw bad('"name" is not a string');
  if (!ID_PATTERN.test(name)) throw bad(`network name ${JSON.stringify(name)}: only letters, digits, _ . - and a letter or digit first`);
  const cniVersion = json.cniVersion;
  if (cniVersion === undefined) throw bad(`network "${name}": no "cniVersion"`);
  if (typeof cniVersion !== 'string' || !VERSION_PATTERN.test(cniVersion)) {
    throw bad(`network "${name}": "cniVersion" ${JSON.stringify(cniVersion)} is not a version like "1.0.0"`);
  }

  let raw: Record<string, unknown>;
  if ('plugins' in json) {
    raw = json;
  } else if ('type' in json) {
    // A single plugin's configuration (the older format): the list libcni makes of it.
    raw = { cniVersion, name, plugins: [json] };
  } else {
    throw bad(`network "${name}": neither "plugins" (a list) nor "type" (a single plugin)`);
  }

  const entries = raw.plugins;
  if (!Array.isArray(entries)) throw bad(`network "${name}": "plugins" is not an array`);
  if (entries.length === 0) throw bad(`network "${name}": "plugins" is empty`);
  const plugins = entries.map((entry, index): PluginConf => {
    if (!isObject(entry)) throw bad(`network "${name}": plugins[${index}] is not a JSON object`);
    if (typeof entry.type !== 'string' || entry.type === '') throw bad(`network "${name}": plugins[${index}] has no "type"`);
    if (entry.capabilities !== undefined && !isObject(entry.capabilities)) {
      throw bad(`network "${name}": plugins[${index}] ("${entry.type}"): "capabilities" is not a JSON object`);
    }
    return entry as PluginConf;
  });

  // libcni takes true/false or the strings "true"/"false" (any case).
  let disableCheck = false;
  const dc = raw.disableCheck;
  if (typeof dc === 'boolean') disableCheck = dc;
  else if (typeof dc === 'string' && /^(true|false)$/i.test(dc)) disableCheck = dc.toLowerCase() === 'true';
  else if (dc !== undefined) throw bad(`network "${name}": "disableCheck" is neither true nor false`);

  return { name, cniVersion, file, plugins, raw, disableCheck };
}

interface ConfigFile {
  file: string;
  network?: NetworkList;
  problem?: string;
  /** The name a file that failed to parse claims, when its JSON at least has one. */
  claimedName?: string;
}

/** The configuration files of a directory in libcni's order (.conflist, then .conf and .json,
 * each sorted by name), each parsed or with its problem. A missing directory has none. */
function readConfigDir(dir: string): { files: ConfigFile[]; problems: string[] } {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { files: [], problems: [] };
    return { files: [], problems: [`${dir}: ${reason(err)}`] };
  }
  const names = (extensions: string[]) =>
    entries
      .filter((e) => !e.isDirectory() && extensions.includes(path.extname(e.name)))
      .map((e) => e.name)
      .sort();
  const files = [...names(LIST_EXTENSIONS), ...names(SINGLE_EXTENSIONS)].map((name): ConfigFile => {
    const file = path.join(dir, name);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      return { file, problem: `${file}: ${reason(err)}` };
    }
    try {
      return { file, network: parseNetwork(text, file) };
    } catch (err) {
      return { file, problem: reason(err), claimedName: claimedName(text) };
    }
  });
  return { files, problems: [] };
}

function claimedName(text: string): string | undefined {
  try {
    const json = JSON.parse(text);
    return isObject(json) && typeof json.name === 'string' ? json.name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The networks of a configuration directory, and a problem ("FILE: why") for each file that
 * does not parse or repeats a name that an earlier file has (the earlier one is used, as
 * libcni does). A missing directory has no networks.
 */
export function listNetworks(dir: string): { networks: NetworkList[]; problems: string[] } {
  const { files, problems } = readConfigDir(dir);
  const networks: NetworkList[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    if (!f.network) {
      problems.push(f.problem!);
      continue;
    }
    const first = seen.get(f.network.name);
    if (first !== undefined) {
      problems.push(`${f.file}: network "${f.network.name}" is also in ${first}, which is the one used`);
      continue;
    }
    seen.set(f.network.name, f.file);
    networks.push(f.network);
  }
  return { networks, problems };
}

/**
 * The network called `name` in a configuration directory. An unknown name is an error that
 * names the directory and the networks it has; when the file meant (the one that claims the
 * name, or is called NAME.conflist/.conf/.json) does not parse, the error is that file's.
 */
export function loadNetwork(dir: string, name: string): NetworkList {
  const { files, problems } = readConfigDir(dir);
  const found = files.find((f) => f.network?.name === name);
  if (found) return found.network!;
  if (problems.length) throw new HuskError(`network "${name}": ${problems[0]}`);
  const broken = files.find((f) => !f.network && (f.claimedName === name || path.basename(f.file, path.extname(f.file)) === name));
  if (broken) throw new HuskError(`network "${name}": ${broken.problem}`);
  const known = files.flatMap((f) => (f.network ? [f.network.name] : []));
  const unreadable = files.filter((f) => !f.network).map((f) => path.basename(f.file));
  const there = known.length ? `networks there: ${[...new Set(known)].join(', ')}` : 'no networks there';
  const also = unreadable.length ? `; not readable: ${unreadable.join(', ')}` : '';
  throw new HuskError(`no network "${name}" in ${dir} (${there}${also})`);
}

// ---------------------------------------------------------------------------------------------
// Finding and running plugins

/** The plugin executable for `type`: the first directory that has it wins. */
export function findPlugin(type: string, pluginDirs: string[]): string {
  // "type" is an executable's name, never a path: a configuration must not run ../../bin/sh.
  if (type === '' || type === '.' || type === '..' || type.includes('/')) {
    throw new HuskError(`plugin type ${JSON.stringify(type)} is not a file name`);
  }
  for (const dir of pluginDirs) {
    const file = path.join(dir, type);
    try {
      if (fs.statSync(file).isFile()) {
        fs.accessSync(file, fs.constants.X_OK);
        return file;
      }
    } catch {
      // not here, or not executable: the next directory
    }
  }
  throw new HuskError(`plugin "${type}" not found in ${pluginDirs.join(', ') || '(no plugin directories)'}`);
}

function pluginFile(list: NetworkList, type: string, pluginDirs: string[]): string {
  try {
    return findPlugin(type, pluginDirs);
  } catch (err) {
    throw new HuskError(`network "${list.name}": ${reason(err)}`);
  }
}

/** Plugins (portmap, firewall, bridge with ipMasq) run iptables: a PATH without the sbin
 * directories (a user's PATH on Debian) would make them fail half-way. */
const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function pluginPath(): string {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  return [...dirs, ...SYSTEM_PATH.filter((d) => !dirs.includes(d))].join(':');
}

interface Exchange {
  command: Command;
  network: string;
  type: string;
  file: string;
  env: Record<string, string>;
  stdin: string;
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** What a plugin may print: far more than any result, far less than a runaway plugin. */
const MAX_OUTPUT = 1 << 20;

/** Runs the plugin once (no shell), its configuration on stdin; resolves when it has exited
 * and closed its output, or when it was killed for taking longer than pluginTimeout. */
function runOnce(x: Exchange): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout kills what the plugin started too (iptables).
    // In /: the caller's directory (the warm server's worker has the caller's) may be gone.
    const child = spawn(x.file, [], { cwd: '/', env: x.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outSize = 0;
    let errSize = 0;
    let timedOut = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let done = false;
    const finish = () => {
      if (done || !exit) return;
      done = true;
      clearTimeout(timer);
      // Whatever still holds the pipes (see below) must not keep husk's event loop alive.
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ ...exit, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut });
    };
    child.stdout.on('data', (b: Buffer) => {
      if (outSize < MAX_OUTPUT) out.push(b);
      outSize += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errSize < MAX_OUTPUT) err.push(b);
      errSize += b.length;
    });
    child.stdin.on('error', () => undefined); // a plugin that exits without reading its stdin
    child.stdin.end(x.stdin);
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
      // Something the plugin started in a session of its own may still hold its stdout: the
      // plugin's own exit is enough.
      finish();
    }, pluginTimeout.ms);
    child.on('error', (e) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Its output closes with it, unless something it started keeps a copy open: then what
      // it printed until now is its answer.
      if (timedOut) finish();
      else setTimeout(finish, 2000).unref();
    });
    child.on('close', finish);
  });
}

/** Runs the plugin, and again (up to 5 times, a second apart) while its file is being written
 * ("text file busy"), as libcni does for plugins installed while a runtime uses them. */
async function run(x: Exchange): Promise<Outcome> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await runOnce(x);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ETXTBSY' && attempt < 5) {
        await sleep(1000);
        continue;
      }
      throw failure(x, `cannot run ${x.file}: ${reason(err)}`);
    }
  }
}

function failure(x: Exchange, why: string): HuskError {
  return new HuskError(`network "${x.network}": plugin "${x.type}" (${x.command}): ${oneLine(why)}`);
}

function oneLine(text: string): string {
  return text.trim().split(/\s*\n\s*/).filter(Boolean).join(' / ');
}

/** A failed plugin's own words: the CNI error it printed ({code, msg, details}), else what it
 * wrote on stderr, else how it ended. */
function pluginError(o: Outcome): string {
  const printed = parseJson(o.stdout);
  if (isObject(printed) && (typeof printed.msg === 'string' || typeof printed.details === 'string')) {
    const msg = typeof printed.msg === 'string' ? printed.msg : '';
    const details = typeof printed.details === 'string' && printed.details ? printed.details : '';
    const words = [msg, details].filter(Boolean).join(': ');
    return words || `error code ${printed.code}`;
  }
  if (o.stderr.trim()) return o.stderr;
  if (o.stdout.trim()) return o.stdout;
  return o.signal ? `killed by signal ${o.signal}` : `exit status ${o.code}, and no message`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Runs one command of one plugin: the plugin's stdout on success (its result, for ADD and
 * VERSION), a HuskError of one line otherwise. */
async function exchange(x: Exchange, summary: (stdout: string) => string): Promise<string> {
  const started = Date.now();
  const o = await run(x);
  const took = `${Date.now() - started} ms`;
  if (o.stderr.trim()) say(`${x.type} wrote on stderr: ${oneLine(o.stderr).slice(0, 400)}`);
  if (o.timedOut) {
    say(`${x.command} ${x.type} = no answer after ${pluginTimeout.ms / 1000} s: killed`);
    throw failure(x, `no answer after ${pluginTimeout.ms / 1000} s: killed`);
  }
  if (o.code !== 0) {
    const why = pluginError(o);
    say(`${x.command} ${x.type} = failed (${took}): ${oneLine(why)}`);
    throw failure(x, why);
  }
  say(`${x.command} ${x.type} = ${summary(o.stdout)} (${took})`);
  return o.stdout;
}

/** --trace (and --debug) lines, in plain words: what husk asks of which plugin, and what came of it. */
function say(line: string) {
  trace('husk', `cni: ${line}`, { kind: 'network', line });
  if (!tracing()) log.debug(`cni: ${line}`);
}

// ---------------------------------------------------------------------------------------------
// Versions

function versionParts(v: string): [number, number, number] | undefined {
  const m = VERSION_PATTERN.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Whether version a is at least b ("1.0.0" >= "0.4.0"). */
export function versionAtLeast(a: string, b: string): boolean {
  const pa = versionParts(a);
  const pb = versionParts(b);
  if (!pa || !pb) throw new HuskError(`CNI version ${JSON.stringify(pa ? b : a)} is not a version like "1.0.0"`);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] > pb[i];
  return true;
}

/**
 * The spec versions a plugin supports, from its VERSION command. A plugin older than the
 * VERSION command (spec 0.1.0) answers "unknown CNI_COMMAND: VERSION": it supports 0.1.0.
 */
async function supportedVersions(list: NetworkList, type: string, pluginDirs: string[]): Promise<string[]> {
  const file = pluginFile(list, type, pluginDirs);
  const x: Exchange = {
    command: 'VERSION',
    network: list.name,
    type,
    file,
    // Plugins built with an old skel library insist on these even for VERSION (libcni sends
    // the same placeholders).
    env: { CNI_COMMAND: 'VERSION', CNI_CONTAINERID: 'dummy', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: pluginDirs.join(':'), PATH: pluginPath() },
    stdin: JSON.stringify({ cniVersion: list.cniVersion }),
  };
  say(`VERSION ${type}: ask ${file} which CNI spec versions it speaks`);
  let stdout: string;
  try {
    stdout = await exchange(x, (text) => {
      const v = parseJson(text);
      return isObject(v) && Array.isArray(v.supportedVersions) ? `supports ${v.supportedVersions.join(', ')}` : 'answered';
    });
  } catch (err) {
    if (err instanceof HuskError && /unknown CNI_COMMAND: VERSION/.test(err.message)) return ['0.1.0'];
    throw err;
  }
  const answer = parseJson(stdout);
  if (!isObject(answer) || !Array.isArray(answer.supportedVersions) || !answer.supportedVersions.every((v) => typeof v === 'string')) {
    throw failure(x, `answered something other than {"supportedVersions": [...]}: ${stdout.slice(0, 200)}`);
  }
  return answer.supportedVersions as string[];
}

/**
 * Version negotiation: asks every plugin of the list (and the IPAM plugin each names) for the
 * spec versions it supports, and fails when one does not support the list's cniVersion.
 */
export async function pluginVersions(list: NetworkList, pluginDirs: string[]): Promise<void> {
  const types: string[] = [];
  for (const plugin of list.plugins) {
    if (!types.includes(plugin.type)) types.push(plugin.type);
    const ipam = plugin.ipam;
    if (isObject(ipam) && typeof ipam.type === 'string' && !types.includes(ipam.type)) types.push(ipam.type);
  }
  for (const type of types) {
    const versions = await supportedVersions(list, type, pluginDirs);
    if (!versions.includes(list.cniVersion)) {
      throw new HuskError(
        `network "${list.name}": plugin "${type}" supports CNI versions ${versions.join(', ')}, not the network's cniVersion ${list.cniVersion}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ADD, CHECK, DEL

/** The checks plugins (from spec 1.0 on, with the skel library) make themselves, made first so
 * a bad id is one clear error rather than the first plugin's. */
function validateRuntime(list: NetworkList, rt: RuntimeConf, command: Command) {
  const bad = (why: string) => new HuskError(`network "${list.name}" (${command}): ${why}`);
  if (!ID_PATTERN.test(rt.containerId)) {
    throw bad(`container id ${JSON.stringify(rt.containerId)}: only letters, digits, _ . - and a letter or digit first`);
  }
  const ifName = rt.ifName;
  if (ifName === '' || ifName === '.' || ifName === '..' || ifName.length > 15 || /[/:\s]/.test(ifName)) {
    throw bad(`interface name ${JSON.stringify(ifName)}: 1 to 15 characters, not . or .., without / : or spaces`);
  }
  if (command !== 'DEL' && rt.netns === '') throw bad('no network namespace (CNI_NETNS)');
  for (const [key, value] of rt.args ?? []) {
    // The plugins split CNI_ARGS at each ; and each pair at each = (types.LoadArgs).
    if (key === '' || /[=;]/.test(key) || /[=;]/.test(value)) {
      throw bad(`CNI_ARGS ${JSON.stringify(`${key}=${value}`)}: keys and values without = or ;`);
    }
  }
}

/**
 * One plugin's stdin, as libcni builds it: the plugin's entry, with the list's name and
 * cniVersion, the previous result when there is one, and "runtimeConfig" holding only the
 * capability arguments the plugin declares in its "capabilities".
 */
export function pluginConfig(list: NetworkList, plugin: PluginConf, rt: RuntimeConf, prevResult: CniResult | undefined): Record<string, unknown> {
  const config: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (prevResult !== undefined) config.prevResult = prevResult;
  const runtimeConfig = declaredCapabilityArgs(plugin, rt);
  // As libcni: the runtime's values replace a "runtimeConfig" the file may have, and a file's
  // stays when the runtime has none for this plugin.
  if (Object.keys(runtimeConfig).length) config.runtimeConfig = runtimeConfig;
  return config;
}

/** The runtime's capability arguments that the plugin declares (`"capabilities": {"portMappings": true}`). */
function declaredCapabilityArgs(plugin: PluginConf, rt: RuntimeConf): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const capabilities = isObject(plugin.capabilities) ? plugin.capabilities : {};
  for (const [capability, declared] of Object.entries(capabilities)) {
    if (declared === true && rt.capabilityArgs?.[capability] !== undefined) out[capability] = rt.capabilityArgs[capability];
  }
  return out;
}

async function invoke(command: Exclude<Command, 'VERSION'>, list: NetworkList, plugin: PluginConf, rt: RuntimeConf, prevResult: CniResult | undefined, pluginDirs: string[]): Promise<string> {
  const file = pluginFile(list, plugin.type, pluginDirs);
  const config = pluginConfig(list, plugin, rt, prevResult);
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: rt.containerId,
    CNI_NETNS: rt.netns,
    CNI_IFNAME: rt.ifName,
    CNI_ARGS: (rt.args ?? []).map(([k, v]) => `${k}=${v}`).join(';'),
    CNI_PATH: pluginDirs.join(':'),
    PATH: pluginPath(),
  };
  const capabilities = Object.keys(declaredCapabilityArgs(plugin, rt));
  const extras = [
    prevResult !== undefined ? (command === 'ADD' ? "the previous plugin's result as prevResult" : 'the ADD result as prevResult') : '',
    capabilities.length ? `runtimeConfig ${capabilities.join(', ')}` : '',
  ].filter(Boolean);
  say(
    `${command} ${plugin.type} for network "${list.name}": run ${file} for ${rt.ifName} in ${rt.netns || '(no netns)'} ` +
      `(container ${rt.containerId}), the network config on stdin${extras.length ? ` with ${extras.join(' and ')}` : ''}`,
  );
  const x: Exchange = { command, network: list.name, type: plugin.type, file, env, stdin: JSON.stringify(config) };
  return exchange(x, command === 'ADD' ? (text) => describeResult(parseJson(text)) : () => 'done');
}

/**
 * ADD: attaches the container to the network, running each plugin in order with the result
 * of the one before as its prevResult. Returns the last plugin's result; `progress` gets each
 * plugin's, so that a caller killed half-way has left the last one for its DEL. A failure
 * leaves what the earlier plugins did: the caller runs delNetworkList.
 */
export async function addNetworkList(list: NetworkList, rt: RuntimeConf, pluginDirs: string[], progress?: (result: CniResult) => void): Promise<CniResult> {
  validateRuntime(list, rt, 'ADD');
  let result: CniResult | undefined;
  for (const plugin of list.plugins) {
    const stdout = await invoke('ADD', list, plugin, rt, result, pluginDirs);
    const printed = parseJson(stdout);
    if (!isObject(printed)) {
      const what = stdout.trim() ? `printed something other than a JSON result: ${stdout.trim().slice(0, 200)}` : 'printed no result';
      throw new HuskError(`network "${list.name}": plugin "${plugin.type}" (ADD): ${oneLine(what)}`);
    }
    // A result without a version is in the configuration's version (libcni's fix-up).
    result = typeof printed.cniVersion === 'string' && printed.cniVersion ? printed : { ...printed, cniVersion: list.cniVersion };
    progress?.(result);
  }
  return result!;
}

/**
 * CHECK: asks each plugin, in order, whether the attachment is still as the ADD result says.
 * Nothing to do for a list that sets disableCheck; an error for versions before 0.4.0, which
 * have no CHECK.
 */
export async function checkNetworkList(list: NetworkList, rt: RuntimeConf, prevResult: CniResult, pluginDirs: string[]): Promise<void> {
  if (!versionAtLeast(list.cniVersion, '0.4.0')) {
    throw new HuskError(`network "${list.name}": cniVersion ${list.cniVersion} has no CHECK (it came with 0.4.0)`);
  }
  if (list.disableCheck) {
    say(`CHECK skipped for network "${list.name}": its configuration says disableCheck`);
    return;
  }
  validateRuntime(list, rt, 'CHECK');
  for (const plugin of list.plugins) await invoke('CHECK', list, plugin, rt, prevResult, pluginDirs);
}

/**
 * DEL: detaches the container, running the plugins in reverse order, each with the ADD
 * result as prevResult (spec 0.4.0 and later; older versions get none). Unlike libcni, a
 * failing plugin does not stop the ones before it in the list from releasing what they hold
 * (the address lease, the bridge port): every plugin runs, and the failures are reported
 * together in one error.
 */
export async function delNetworkList(list: NetworkList, rt: RuntimeConf, prevResult: CniResult | undefined, pluginDirs: string[]): Promise<void> {
  validateRuntime(list, rt, 'DEL');
  const prev = versionAtLeast(list.cniVersion, '0.4.0') ? prevResult : undefined;
  const failures: string[] = [];
  for (const plugin of [...list.plugins].reverse()) {
    try {
      await invoke('DEL', list, plugin, rt, prev, pluginDirs);
    } catch (err) {
      failures.push(reason(err).replace(`network "${list.name}": `, ''));
    }
  }
  if (failures.length) throw new HuskError(`network "${list.name}": ${failures.join('; ')}`);
}

// ---------------------------------------------------------------------------------------------
// Results

/**
 * The addresses (CIDR, "10.73.0.2/16") of a result, of every spec version: "ips" from 0.3.0
 * on, "ip4"/"ip6" before. With ifName, only those on that interface (and those the result does
 * not tie to an interface).
 */
export function resultAddresses(result: CniResult, ifName?: string): string[] {
  const out: string[] = [];
  const interfaces = Array.isArray(result.interfaces) ? result.interfaces : [];
  if (Array.isArray(result.ips)) {
    for (const ip of result.ips) {
      if (!isObject(ip) || typeof ip.address !== 'string') continue;
      if (ifName !== undefined && typeof ip.interface === 'number') {
        const itf = interfaces[ip.interface];
        if (isObject(itf) && itf.name !== ifName) continue;
      }
      out.push(ip.address);
    }
  }
  for (const key of ['ip4', 'ip6']) {
    const ip = result[key];
    if (isObject(ip) && typeof ip.ip === 'string') out.push(ip.ip);
  }
  return out;
}

function describeResult(result: unknown): string {
  if (!isObject(result)) return 'no JSON result';
  const addresses = resultAddresses(result);
  const gateways = Array.isArray(result.ips) ? result.ips.flatMap((ip) => (isObject(ip) && typeof ip.gateway === 'string' ? [ip.gateway] : [])) : [];
  const names = Array.isArray(result.interfaces) ? result.interfaces.flatMap((i) => (isObject(i) && typeof i.name === 'string' ? [i.name] : [])) : [];
  const parts = [
    names.length ? `interfaces ${names.join(', ')}` : '',
    addresses.length ? `addresses ${addresses.join(', ')}` : 'no addresses',
    gateways.length ? `gateway ${[...new Set(gateways)].join(', ')}` : '',
  ].filter(Boolean);
  return `result: ${parts.join('; ')}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
