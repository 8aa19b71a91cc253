// `docker events`: what happened to containers, images, networks and volumes, as dockerd
// reports it. Kept in memory for the live stream and appended to a file (the last few
// thousand), so `--since` reaches back past a daemon restart.
import { EventEmitter } from 'events';
import * as fs from 'fs';
import { badRequest, commonHeaders, filtersParam, type Route } from './api';

export interface DockerEvent {
  Type: 'container' | 'image' | 'network' | 'volume' | 'daemon';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  // The pre-1.22 fields the CLI still prints for containers and images.
  status?: string;
  id?: string;
  from?: string;
}

const KEEP = 4096;

export class EventBus {
  private readonly live = new EventEmitter();
  private recent: DockerEvent[] = [];

  constructor(private readonly file: string) {
    this.live.setMaxListeners(0);
    try {
      this.recent = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(-KEEP).map((l) => JSON.parse(l) as DockerEvent);
    } catch {
      this.recent = [];
    }
  }

  emit(type: DockerEvent['Type'], action: string, id: string, attributes: Record<string, string> = {}): void {
    const nano = BigInt(Date.now()) * 1_000_000n + BigInt(Number(process.hrtime.bigint() % 1_000_000n));
    const event: DockerEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(nano / 1_000_000_000n),
      timeNano: Number(nano),
    };
    if (type === 'container' || type === 'image') {
      event.status = action;
      event.id = id;
      if (attributes.image) event.from = attributes.image;
    }
    this.recent.push(event);
    if (this.recent.length > KEEP * 2) this.recent = this.recent.slice(-KEEP);
    try {
      fs.appendFileSync(this.file, JSON.stringify(event) + '\n');
      if (this.recent.length === KEEP * 2 - 1) fs.writeFileSync(this.file, this.recent.slice(-KEEP).map((e) => JSON.stringify(e)).join('\n') + '\n');
    } catch {
      // the record of events is a convenience; the event still goes out live
    }
    this.live.emit('event', event);
  }

  since(nanoFrom: number): DockerEvent[] {
    return this.recent.filter((e) => e.timeNano >= nanoFrom);
  }

  subscribe(fn: (e: DockerEvent) => void): () => void {
    this.live.on('event', fn);
    return () => this.live.off('event', fn);
  }
}

/** `--since`/`--until` as the API takes them: Unix seconds with an optional fraction. */
export function parseEventTime(text: string | null, name: string): number | undefined {
  if (text === null || text === '') return undefined;
  if (!/^[0-9]+(\.[0-9]{1,9})?$/.test(text)) throw badRequest(`invalid value for ${name}: ${JSON.stringify(text)}: expected Unix seconds`);
  const [s, frac = ''] = text.split('.');
  return Number(s) * 1e9 + Number(frac.padEnd(9, '0'));
}

const FILTERS = ['container', 'event', 'image', 'label', 'network', 'type', 'volume', 'scope', 'daemon'];

function matches(e: DockerEvent, filters: Map<string, string[]>): boolean {
  const any = (name: string, test: (v: string) => boolean) => !filters.has(name) || filters.get(name)!.some(test);
  const name = e.Actor.Attributes.name;
  return any('type', (v) => v === e.Type)
    && any('event', (v) => v === e.Action || e.Action.startsWith(`${v}:`))
    && any('container', (v) => e.Type === 'container' && (e.Actor.ID.startsWith(v) || v === name))
    && any('image', (v) => (e.Type === 'image' && (e.Actor.ID.startsWith(v) || v === name)) || e.Actor.Attributes.image === v)
    && any('network', (v) => e.Type === 'network' && (e.Actor.ID.startsWith(v) || v === name))
    && any('volume', (v) => e.Type === 'volume' && (e.Actor.ID === v || v === name))
    && any('scope', (v) => v === 'local')
    && any('label', (v) => {
      const [k, val] = v.split('=', 2);
      return val === undefined ? k in e.Actor.Attributes : e.Actor.Attributes[k] === val;
    });
}

export function eventRoutes(bus: EventBus): Route[] {
  return [{
    method: 'GET',
    path: '/events',
    handle(req, res) {
      const since = parseEventTime(req.query.get('since'), 'since');
      const until = parseEventTime(req.query.get('until'), 'until');
      const filters = filtersParam(req.query, FILTERS);
      const out = res.raw;
      out.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/json' });
      out.flushHeaders();
      const send = (e: DockerEvent) => {
        if (until !== undefined && e.timeNano > until) return;
        if (matches(e, filters)) out.write(JSON.stringify(e) + '\n');
      };
      if (since !== undefined) for (const e of bus.since(since)) send(e);
      const now = Date.now() * 1e6;
      if (until !== undefined && until <= now) {
        out.end();
        return;
      }
      const unsubscribe = bus.subscribe(send);
      const timer = until !== undefined ? setTimeout(() => out.end(), (until - now) / 1e6) : undefined;
      out.on('close', () => {
        unsubscribe();
        if (timer) clearTimeout(timer);
      });
    },
  }];
}
