// husk's own executable: what husk writes into the hooks of the bundles it makes, and how the
// runtime recognises those hooks as its own.
import * as path from 'path';

export const HUSK_BIN = path.join(__dirname, '..', '..', 'bin', 'husk');
