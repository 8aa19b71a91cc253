// husk spec: a default config.json, as `runc spec` writes it.
import * as fs from 'fs';
import * as path from 'path';
import { HuskError } from '../errors';
import { defaultSpec } from '../spec/defaults';

export function spec(bundle: string, rootless: boolean) {
  const file = path.join(bundle, 'config.json');
  if (fs.existsSync(file)) throw new HuskError(`File ${file} exists. Remove it first`);
  fs.writeFileSync(file, JSON.stringify(defaultSpec({ rootless, hostUid: process.geteuid?.(), hostGid: process.getegid?.() }), null, '\t'));
}
