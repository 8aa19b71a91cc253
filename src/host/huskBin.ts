// husk's own executable, for the calls husk makes later on the caller's behalf: the hooks it
// writes into config.json (`husk image unbundle`, `husk network attach/detach`), and the
// reaper of `image run -d --rm`. The runtime compares a hook's path with it to know its own.
import * as path from 'path';

export const HUSK_BIN = path.join(__dirname, '..', '..', 'bin', 'husk');
