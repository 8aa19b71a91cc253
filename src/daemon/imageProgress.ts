// dockerd's pull progress, as the JSON stream `POST /images/create` answers with: one object per
// line, `{"status", "id", "progressDetail", "progress"}`, which the docker CLI redraws in place
// in a terminal (one line per layer, keyed by `id`) and prints line by line otherwise. Husk's
// pull reports through the Progress interface (src/image/progress.ts); this is the adapter,
// kept apart from the HTTP side so the shaping is unit-tested.
import type { Phase, Progress } from '../image/progress';

export interface JsonMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  stream?: string;
  error?: string;
  errorDetail?: { message: string };
}

/** go-units' HumanSize: four significant digits, decimal units (`1.235MB`, `512B`). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  // Go's %.4g: at most four significant digits, no trailing zeros.
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/** The `progress` text dockerd sends beside progressDetail (jsonmessage's JSONProgress.String
 * at its default width): a 50-column bar and `current/total`. */
export function progressText(current: number, total: number): string {
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current).padStart(8);
  const filled = Math.min(50, Math.floor(Math.floor((current / total) * 100) / 2));
  const bar = `[${'='.repeat(filled)}>${' '.repeat(50 - filled)}] `;
  return `${bar}${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

/** The first 12 hex digits of a digest: the id dockerd gives a layer's progress line. */
export function layerId(digest: string): string {
  return digest.replace(/^[a-z0-9]+:/, '').slice(0, 12);
}

export function errorMessage(message: string): JsonMessage {
  return { errorDetail: { message }, error: message };
}

/**
 * A Progress that speaks dockerd's pull messages to `send`. Nothing is sent before the first
 * layer is announced: until then a failure (no such image) can still be an HTTP error status.
 * `header` is the line sent first (`{"status":"Pulling from a/b","id":"latest"}`).
 * Downloading and Extracting lines are sent at most every `intervalMs` per layer.
 */
export class PullProgress implements Progress {
  private readonly items = new Map<string, { id: string; total: number; phase: Phase; lastSent: number; announced?: boolean }>();
  started = false;

  constructor(private readonly send: (m: JsonMessage) => void, private readonly header: JsonMessage, private readonly intervalMs = 100, private readonly now = () => Date.now()) {}

  /** Sends the header once (also for an image with no layers to fetch). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.send(this.header);
  }

  item(digest: string, _label: string, total: number): void {
    this.start();
    const id = layerId(digest);
    this.items.set(digest, { id, total, phase: 'waiting', lastSent: 0 });
    // Announced once the pull has said which layers it has already (in the same turn of the
    // event loop): those get "Already exists" only, as from dockerd.
    if (!this.announcing) {
      this.announcing = true;
      queueMicrotask(() => this.announce());
    }
  }

  private announcing = false;

  /** "Pulling fs layer" for every layer not yet announced that is still to be fetched. */
  private announce(): void {
    this.announcing = false;
    for (const item of this.items.values()) {
      if (item.announced) continue;
      item.announced = true;
      if (item.phase === 'waiting') this.send({ status: 'Pulling fs layer', id: item.id, progressDetail: {} });
    }
  }

  update(digest: string, done: number, phase?: Phase): void {
    const item = this.items.get(digest);
    if (!item) return;
    if (!item.announced && phase !== 'exists') this.announce();
    const changed = phase !== undefined && phase !== item.phase;
    if (phase) item.phase = phase;
    const now = this.now();
    const detail = (status: string, current: number) => {
      item.lastSent = now;
      this.send({ status, progressDetail: { current, total: item.total }, progress: progressText(current, item.total), id: item.id });
    };
    switch (item.phase) {
      case 'downloading':
        if (changed || now - item.lastSent >= this.intervalMs) if (done > 0 || changed) detail('Downloading', done);
        break;
      case 'downloaded':
        if (changed) {
          this.send({ status: 'Verifying Checksum', progressDetail: {}, id: item.id });
          this.send({ status: 'Download complete', progressDetail: {}, id: item.id });
        }
        break;
      case 'unpacking':
        if (changed || now - item.lastSent >= this.intervalMs) detail('Extracting', Math.min(done, item.total) || item.total);
        break;
      case 'done':
        if (changed) this.send({ status: 'Pull complete', progressDetail: {}, id: item.id });
        break;
      case 'exists':
        if (changed) this.send({ status: 'Already exists', progressDetail: {}, id: item.id });
        break;
      default:
        break;
    }
  }

  line(text: string): void {
    if (this.started) this.send({ status: text });
  }

  end(): void {}
}

/**
 * `docker load` without quiet: dockerd's "Loading layer" lines, one per layer as the archive's
 * blobs are read into the store (the CLI draws them as bars in a terminal), at most every
 * `intervalMs` per layer.
 */
export class LoadProgress implements Progress {
  private readonly items = new Map<string, { id: string; total: number; lastSent: number; done: boolean }>();

  constructor(private readonly send: (m: JsonMessage) => void, private readonly intervalMs = 100, private readonly now = () => Date.now()) {}

  item(digest: string, _label: string, total: number): void {
    this.items.set(digest, { id: layerId(digest), total, lastSent: 0, done: false });
  }

  update(digest: string, done: number, phase?: Phase): void {
    const item = this.items.get(digest);
    if (!item || item.done || phase === 'failed') return;
    const finished = phase === 'downloaded' || phase === 'exists' || phase === 'done';
    const now = this.now();
    if (!finished && now - item.lastSent < this.intervalMs) return;
    item.lastSent = now;
    item.done = finished;
    const current = finished ? item.total : Math.min(done, item.total);
    this.send({ status: 'Loading layer', progressDetail: { current, total: item.total }, progress: progressText(current, item.total), id: item.id });
  }

  line(): void {}

  end(): void {}
}
