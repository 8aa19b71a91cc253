/*
 * A small CRI client for the tests: the calls a kubelet makes to containerd's CRI plugin, over
 * its unix socket, with the messages of runtime-v1.proto (loaded at run time by
 * @grpc/proto-loader, fields in the API's snake_case). Every unary call has a deadline.
 *
 * Exec is the kubelet's streaming path: the CRI call only returns a URL on containerd's
 * streaming server, and the client then speaks Kubernetes' remote-command protocol to it. This
 * client uses its WebSocket form ("v4.channel.k8s.io"): every binary message starts with a
 * channel byte (0 stdin, 1 stdout, 2 stderr, 3 the final status as JSON, 4 terminal size as
 * JSON), the server ends with a status on channel 3 and closes. The WebSocket framing (RFC 6455,
 * client side) is written here: Node 20 has no WebSocket client without a flag.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO = path.join(__dirname, 'runtime-v1.proto');

/** How long a unary call may take before the client gives up (containerd's calls are quick,
 *  but RunPodSandbox sets up a network and starts a container on two busy cores). */
export const CALL_DEADLINE_MS = 40_000;

// ------------------------------------------------------------------------------ messages

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

export interface NamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
}

export interface LinuxContainerResources {
  cpu_period?: number;
  cpu_quota?: number;
  cpu_shares?: number;
  memory_limit_in_bytes?: number;
  oom_score_adj?: number;
  cpuset_cpus?: string;
  cpuset_mems?: string;
}

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  log_directory?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: { namespace_options?: NamespaceOption; privileged?: boolean };
    sysctls?: Record<string, string>;
  };
}

export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string };
  command?: string[];
  args?: string[];
  working_dir?: string;
  envs?: { key: string; value: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  log_path?: string;
  stdin?: boolean;
  tty?: boolean;
  linux?: {
    resources?: LinuxContainerResources;
    security_context?: { namespace_options?: NamespaceOption; privileged?: boolean };
  };
}

export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export interface ContainerStatus {
  id: string;
  metadata: { name: string; attempt: number };
  state: ContainerState;
  created_at: number;
  started_at: number;
  finished_at: number;
  exit_code: number;
  reason: string;
  message: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  log_path: string;
  resources: { linux: LinuxContainerResources | null } | null;
}

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxConfig['metadata'];
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  network: { ip: string } | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtime_handler: string;
}

export interface ExecSyncResult {
  stdout: string;
  stderr: string;
  exit_code: number;
}

// -------------------------------------------------------------------------------- client

type Service = grpc.Client & Record<string, unknown>;
type ServiceName = 'runtime' | 'image';
type Callback<T> = (err: grpc.ServiceError | null, res: T) => void;
type UnaryMethod<T> = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<T>) => void;

/** A CRI failure: the call, and the gRPC status and message containerd returned. */
export class CriError extends Error {
  constructor(readonly method: string, readonly code: grpc.status | undefined, detail: string) {
    super(`CRI ${method}: ${detail}`);
  }
}

/** containerd's verbose info: JSON documents by name ("info": pid, OCI spec, netns...). */
type Info = Record<string, any>;

interface PodSandboxItem {
  id: string;
  state: string;
  runtime_handler: string;
}

interface ContainerItem {
  id: string;
  pod_sandbox_id: string;
  state: ContainerState;
}

export class CriClient {
  private readonly runtime: Service;
  private readonly images: Service;

  constructor(readonly socket: string) {
    const options = { keepCase: true, longs: Number, enums: String, defaults: true };
    const loaded = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, options)) as any;
    const api = loaded.runtime.v1;
    // containerd's socket is a unix socket; grpc-js takes unix:<absolute path>.
    this.runtime = new api.RuntimeService(`unix:${socket}`, grpc.credentials.createInsecure());
    this.images = new api.ImageService(`unix:${socket}`, grpc.credentials.createInsecure());
  }

  close(): void {
    this.runtime.close();
    this.images.close();
  }

  /** One unary call with a deadline; rejects with a CriError naming the method. */
  call<T>(method: string, request: object, timeoutMs = CALL_DEADLINE_MS, service: ServiceName = 'runtime'): Promise<T> {
    const stub = service === 'runtime' ? this.runtime : this.images;
    const fn = stub[method] as UnaryMethod<T> | undefined;
    if (typeof fn !== 'function') return Promise.reject(new CriError(method, undefined, 'not in runtime-v1.proto'));
    return new Promise((resolve, reject) => {
      fn.call(stub, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (!err) return resolve(res);
        reject(new CriError(method, err.code, `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`));
      });
    });
  }

  version(): Promise<{ runtime_name: string; runtime_version: string; runtime_api_version: string }> {
    return this.call('Version', { version: 'v1' }, 10_000);
  }

  /** The runtime's conditions (RuntimeReady, NetworkReady) by type. */
  async conditions(): Promise<Record<string, boolean>> {
    const res = await this.call<{ status: { conditions: { type: string; status: boolean }[] } }>('Status', {}, 10_000);
    return Object.fromEntries(res.status.conditions.map((c) => [c.type, c.status]));
  }

  async imageStatus(image: string): Promise<{ id: string; repo_tags: string[]; size: number } | null> {
    type Res = { image: { id: string; repo_tags: string[]; size: number } | null };
    return (await this.call<Res>('ImageStatus', { image: { image } }, 10_000, 'image')).image;
  }

  async runPodSandbox(config: PodSandboxConfig, handler: string): Promise<string> {
    const res = await this.call<{ pod_sandbox_id: string }>('RunPodSandbox', { config, runtime_handler: handler });
    return res.pod_sandbox_id;
  }

  /** The sandbox's status, and with verbose containerd's info JSON (pid, OCI spec, netns). */
  async podSandboxStatus(id: string, verbose = false): Promise<{ status: PodSandboxStatus; info: Info }> {
    type Res = { status: PodSandboxStatus; info: Record<string, string> };
    const res = await this.call<Res>('PodSandboxStatus', { pod_sandbox_id: id, verbose });
    return { status: res.status, info: parseInfo(res.info) };
  }

  async listPodSandbox(labels: Record<string, string> = {}): Promise<PodSandboxItem[]> {
    const filter = { label_selector: labels };
    return (await this.call<{ items: PodSandboxItem[] }>('ListPodSandbox', { filter })).items;
  }

  stopPodSandbox(id: string): Promise<unknown> {
    return this.call('StopPodSandbox', { pod_sandbox_id: id });
  }

  removePodSandbox(id: string): Promise<unknown> {
    return this.call('RemovePodSandbox', { pod_sandbox_id: id });
  }

  async createContainer(podId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const request = { pod_sandbox_id: podId, config, sandbox_config: sandboxConfig };
    return (await this.call<{ container_id: string }>('CreateContainer', request)).container_id;
  }

  startContainer(id: string): Promise<unknown> {
    return this.call('StartContainer', { container_id: id });
  }

  /** Stop with a grace period in seconds; the deadline allows for it. */
  stopContainer(id: string, graceSeconds: number): Promise<unknown> {
    const request = { container_id: id, timeout: graceSeconds };
    return this.call('StopContainer', request, CALL_DEADLINE_MS + graceSeconds * 1000);
  }

  removeContainer(id: string): Promise<unknown> {
    return this.call('RemoveContainer', { container_id: id });
  }

  async listContainers(podId?: string): Promise<ContainerItem[]> {
    const filter = podId ? { pod_sandbox_id: podId } : {};
    return (await this.call<{ containers: ContainerItem[] }>('ListContainers', { filter })).containers;
  }

  async containerStatus(id: string, verbose = false): Promise<{ status: ContainerStatus; info: Info }> {
    type Res = { status: ContainerStatus; info: Record<string, string> };
    const res = await this.call<Res>('ContainerStatus', { container_id: id, verbose });
    return { status: res.status, info: parseInfo(res.info) };
  }

  updateContainerResources(id: string, linux: LinuxContainerResources): Promise<unknown> {
    return this.call('UpdateContainerResources', { container_id: id, linux });
  }

  /** ExecSync with a timeout in seconds for the command (the call's deadline a little later). */
  async execSync(id: string, cmd: string[], timeoutSeconds = 20): Promise<ExecSyncResult> {
    type Res = { stdout: Buffer; stderr: Buffer; exit_code: number };
    const request = { container_id: id, cmd, timeout: timeoutSeconds };
    const res = await this.call<Res>('ExecSync', request, timeoutSeconds * 1000 + 10_000);
    return { stdout: res.stdout.toString('utf8'), stderr: res.stderr.toString('utf8'), exit_code: res.exit_code };
  }

  /** Exec: the streaming URL for the command (see openStream). With a terminal, stderr is stdout. */
  async exec(id: string, cmd: string[], opts: { tty: boolean; stdin: boolean }): Promise<string> {
    const request = { container_id: id, cmd, tty: opts.tty, stdin: opts.stdin, stdout: true, stderr: !opts.tty };
    return (await this.call<{ url: string }>('Exec', request)).url;
  }
}

/** containerd's verbose "info" values are JSON documents; parsed, or kept as text. */
function parseInfo(info: Record<string, string> | undefined): Info {
  const out: Info = {};
  for (const [k, v] of Object.entries(info ?? {})) {
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

// ------------------------------------------------------------------------ remote command

/** What a streamed command did: its output by channel and its exit code from the final status. */
export interface StreamResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  /** The status document of channel 3 (v4: a Kubernetes Status object). */
  status: Record<string, any> | null;
  protocol: string;
}

export interface StreamOptions {
  /**
   * The network namespace (a path such as /run/netns/NAME) containerd's streaming server
   * listens in: the connection is then made from a relay started inside it (the test's
   * containerd runs in a namespace of the test's own, and its 127.0.0.1 is that namespace's).
   */
  netns?: string;
  timeoutMs?: number;
}

const STREAM_PROTOCOL = 'v4.channel.k8s.io';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// Runs inside the namespace: copies between its stdio and one TCP connection.
const RELAY = `const s = require('net').connect(Number(process.argv[2]), process.argv[1]);
process.stdin.pipe(s); s.pipe(process.stdout);
s.on('close', () => process.exit(0));
s.on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });`;

/** A byte stream to the server: a TCP socket, or a relay's stdio. */
interface Pipe {
  write(data: Buffer): void;
  onData(fn: (data: Buffer) => void): void;
  onClose(fn: (why: string) => void): void;
  end(): void;
}

function tcpPipe(host: string, port: number): Pipe {
  const s = net.connect(port, host);
  return {
    write: (d) => void s.write(d),
    onData: (fn) => void s.on('data', fn),
    onClose: (fn) => {
      s.on('close', () => fn('connection closed'));
      s.on('error', (e) => fn(e.message));
    },
    end: () => s.destroy(),
  };
}

function relayPipe(netns: string, host: string, port: number): Pipe {
  const argv = [`--net=${netns}`, '--', process.execPath, '-e', RELAY, host, String(port)];
  const child: ChildProcess = spawn('nsenter', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdin!.on('error', () => undefined);
  return {
    write: (d) => void child.stdin!.write(d),
    onData: (fn) => void child.stdout!.on('data', fn),
    onClose: (fn) => {
      child.on('exit', (code, signal) => fn(`relay exited (${signal ?? code})${stderr ? `: ${stderr.trim()}` : ''}`));
      child.on('error', (e) => fn(`relay: ${e.message}`));
    },
    end: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * An open remote-command session: write to stdin, change the terminal's size, wait for output,
 * and wait for the end (the status on channel 3 and the server's close).
 */
export class StreamSession {
  stdout = '';
  stderr = '';
  status: Record<string, any> | null = null;
  private closed: string | null = null;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly pipe: Pipe, readonly protocol: string) {}

  /** Bytes on stdin (channel 0). */
  write(text: string): void {
    this.send(Buffer.concat([Buffer.from([0]), Buffer.from(text, 'utf8')]));
  }

  /** The terminal's size (channel 4), as the kubelet's client sends it. */
  resize(cols: number, rows: number): void {
    this.send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: cols, Height: rows }))]));
  }

  /** Waits until the output (stdout and stderr) matches `pattern`. */
  async waitOutput(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    await this.until(() => pattern.test(this.stdout + this.stderr), `output matching ${pattern}`, timeoutMs);
  }

  /** Waits for the server to close the stream; returns what the command did. */
  async done(timeoutMs = 30_000): Promise<StreamResult> {
    await this.until(() => this.closed !== null, 'the stream to end', timeoutMs);
    this.pipe.end();
    const { stdout, stderr, status, protocol } = this;
    return { stdout, stderr, exitCode: exitCodeOf(status), status, protocol };
  }

  /** Ends the connection from this side. */
  abort(): void {
    this.pipe.end();
  }

  // Called by the frame reader.
  deliver(channel: number, data: Buffer): void {
    if (channel === 1) this.stdout += data.toString('utf8');
    else if (channel === 2) this.stderr += data.toString('utf8');
    else if (channel === 3 && data.length) {
      const text = data.toString('utf8');
      try {
        this.status = JSON.parse(text);
      } catch {
        this.status = { message: text };
      }
    }
    this.wake();
  }

  end(why: string): void {
    if (this.closed === null) this.closed = why;
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private until(test: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const detail = `${this.sofar()}, closed: ${this.closed}`;
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${detail}`));
      }, timeoutMs);
      const check = () => {
        if (test()) {
          clearTimeout(timer);
          resolve();
        } else if (this.closed !== null && what !== 'the stream to end') {
          clearTimeout(timer);
          reject(new Error(`the stream ended (${this.closed}) before ${what}; ${this.sofar()}`));
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  private sofar(): string {
    return `stdout so far: ${JSON.stringify(this.stdout)}, stderr: ${JSON.stringify(this.stderr)}`;
  }

  private send(payload: Buffer): void {
    if (this.closed !== null) throw new Error(`the stream has ended (${this.closed})`);
    this.pipe.write(encodeFrame(0x2, payload));
  }
}

/** The exit code in a v4 status: 0 for Success, the ExitCode cause for NonZeroExitCode. */
export function exitCodeOf(status: Record<string, any> | null): number | null {
  if (!status) return null;
  if (status.status === 'Success') return 0;
  const cause = (status.details?.causes ?? []).find((c: Record<string, string>) => c.reason === 'ExitCode');
  return cause ? Number(cause.message) : null;
}

/** A client frame: FIN, the opcode, masked payload (RFC 6455 5.2; clients must mask). */
function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const mask = crypto.randomBytes(4);
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([0x80 | opcode, 0x80 | payload.length]);
  } else if (payload.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([header, mask, masked]);
}

/**
 * Opens the streaming URL an Exec call returned: the HTTP upgrade to WebSocket with the v4
 * channel protocol, checked (status 101, the accept key, the protocol), then the frame reader.
 * Resolves once the server has accepted.
 */
export function openStream(url: string, opts: StreamOptions = {}): Promise<StreamSession> {
  const u = new URL(url);
  if (u.protocol !== 'http:') return Promise.reject(new Error(`streaming URL ${url}: only http is supported`));
  const port = Number(u.port || 80);
  const pipe = opts.netns ? relayPipe(opts.netns, u.hostname, port) : tcpPipe(u.hostname, port);
  const key = crypto.randomBytes(16).toString('base64');
  const expectedAccept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  const request = [
    `GET ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, 'Upgrade: websocket', 'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13', `Sec-WebSocket-Protocol: ${STREAM_PROTOCOL}`,
    `Origin: http://${u.host}`, '', '',
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    let session: StreamSession | null = null;
    let fragments: Buffer[] = [];
    const timer = setTimeout(() => {
      pipe.end();
      reject(new Error(`no WebSocket upgrade from ${url} within ${opts.timeoutMs ?? 20_000} ms`));
    }, opts.timeoutMs ?? 20_000);
    const readFrames = () => {
      for (;;) {
        if (buffer.length < 2) return;
        const fin = (buffer[0] & 0x80) !== 0;
        const opcode = buffer[0] & 0x0f;
        const masked = (buffer[1] & 0x80) !== 0;
        let length = buffer[1] & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        const maskKey = masked ? buffer.subarray(offset, offset + 4) : null;
        if (masked) offset += 4;
        if (buffer.length < offset + length) return;
        let payload = Buffer.from(buffer.subarray(offset, offset + length));
        buffer = buffer.subarray(offset + length);
        if (maskKey) for (let i = 0; i < payload.length; i++) payload[i] ^= maskKey[i % 4];
        if (opcode === 0x8) {
          // Close: answer it, then the server ends the connection.
          try {
            pipe.write(encodeFrame(0x8, payload.subarray(0, 2)));
          } catch {
            // already gone
          }
          session!.end('closed by the server');
          continue;
        }
        if (opcode === 0x9) {
          pipe.write(encodeFrame(0xa, payload));
          continue;
        }
        if (opcode === 0xa) continue;
        fragments.push(payload);
        if (!fin) continue;
        payload = Buffer.concat(fragments);
        fragments = [];
        if (payload.length) session!.deliver(payload[0], payload.subarray(1));
      }
    };
    pipe.onData((data) => {
      buffer = Buffer.concat([buffer, data]);
      if (session) return readFrames();
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString('latin1').split('\r\n');
      buffer = buffer.subarray(end + 4);
      const headers = new Map(head.slice(1).map((l) => {
        const colon = l.indexOf(':');
        return [l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim()];
      }));
      clearTimeout(timer);
      const protocol = headers.get('sec-websocket-protocol');
      const problem =
        !/^HTTP\/1\.1 101\b/.test(head[0]) ? `the server answered ${head[0]}` :
        headers.get('sec-websocket-accept') !== expectedAccept ? 'a wrong Sec-WebSocket-Accept' :
        protocol !== STREAM_PROTOCOL ? `protocol ${protocol}` : '';
      if (problem) {
        pipe.end();
        const answer = `${head.join('\n')}\n${buffer.toString('utf8')}`;
        reject(new Error(`WebSocket upgrade to ${url} failed: ${problem}\n${answer}`));
        return;
      }
      session = new StreamSession(pipe, STREAM_PROTOCOL);
      resolve(session);
      readFrames();
    });
    pipe.onClose((why) => {
      if (session) session.end(why);
      else {
        clearTimeout(timer);
        reject(new Error(`the connection to ${url} ended before the upgrade: ${why}`));
      }
    });
    pipe.write(Buffer.from(request, 'latin1'));
  });
}
