// What every part of the daemon shares: where things live, the image store, the event bus.
import * as fs from 'fs';
import * as path from 'path';
import { ImageStore } from '../image/store';
import { EventBus } from './events';

export interface DaemonOptions {
  /** --data-root: the daemon's containers and volumes (default /var/lib/husk/daemon). */
  dataRoot: string;
  /** --exec-root: sockets and the runtime's state (default /run/husk/daemon). */
  execRoot: string;
  /** --store: the image store, shared with `husk image` (default /var/lib/husk). */
  store: string;
  /** The CNI directories, as `husk image run` takes them. */
  cniConfigDir?: string;
  cniPluginDirs?: string[];
  /** Registries reached over plain HTTP. */
  insecureRegistries: string[];
}

export class DaemonContext {
  readonly images: ImageStore;
  readonly events: EventBus;
  /** The husk runtime's state root for the daemon's containers (`husk --root` on them). */
  readonly runtimeRoot: string;
  /** One directory per container: its record, log, monitor sockets. */
  readonly containersDir: string;
  readonly volumesDir: string;
  readonly started = new Date();

  constructor(readonly o: DaemonOptions) {
    this.images = new ImageStore(o.store).init();
    this.runtimeRoot = path.join(o.execRoot, 'runtime');
    this.containersDir = path.join(o.dataRoot, 'containers');
    this.volumesDir = path.join(o.dataRoot, 'volumes');
    for (const dir of [o.dataRoot, o.execRoot, this.runtimeRoot, this.containersDir, this.volumesDir]) fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    this.events = new EventBus(path.join(o.dataRoot, 'events.jsonl'));
  }
}
