// Where the Node server's log lines go: stdout, written asynchronously and in batches (sonic-boom,
// pino's destination). Lines that arrive while a write is in flight go out together in the next
// write, so a busy server makes a few writes a tick instead of one blocking write per request.
// What is still buffered when the process exits is written synchronously on the way out.
import SonicBoom from 'sonic-boom';

/** At most this much waits for a stuck stdout (a reader that stopped); beyond it lines are dropped, memory stays bounded. */
const MAX_BUFFERED = 16 * 2 ** 20;
/** Lines wait until this much has gathered (or FLUSH_MS passed): one write per ~30 request lines. */
const BATCH_BYTES = 4096;
const FLUSH_MS = 100;

export function stdoutLines(): (line: string) => void {
  const out = new SonicBoom({ fd: 1, sync: false, minLength: BATCH_BYTES, periodicFlush: FLUSH_MS, maxLength: MAX_BUFFERED });
  process.on('exit', () => {
    try {
      out.flushSync();
    } catch {
      // stdout is gone (closed pipe): nothing left to write to.
    }
  });
  return (line) => void out.write(line + '\n');
}
