// A backup of a running embedded server: only that process may open its PGlite folder, so it
// answers GET /backup on a Unix socket in DATA_DIR (owner-only, like the folder), streaming the
// archive; `npm run backup` asks there first.
import { chmod, rm } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../deps';
import { writeBackup, type BackupSource } from './archive';

export const BACKUP_SOCKET = 'orbital.sock';

export async function serveBackups(source: BackupSource, dataDir: string, logger: Logger): Promise<{ close(): Promise<void> }> {
  const path = join(dataDir, BACKUP_SOCKET);
  // A socket file left by a crash: this process holds DATA_DIR's lock, so nobody else serves it.
  await rm(path, { force: true });
  /** Backups being written: shutdown waits for each to remove its staging folder. */
  const running = new Set<Promise<void>>();
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/backup') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/x-tar' });
    const backup = writeBackup(source, res).then(
      (m) => logger.log('info', { msg: 'backup written', tables: m.tables.length, media_files: m.blobs.files }),
      (err) => {
        const code = (err as NodeJS.ErrnoException)?.code;
        // A reader that went away (Ctrl-C on `npm run backup`) is no server failure.
        if (code === 'ERR_STREAM_PREMATURE_CLOSE') logger.log('warn', { msg: 'backup reader went away before the end' });
        else logger.log('error', { msg: 'backup failed', error: code ?? (err instanceof Error ? err.name : String(err)) });
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
    running.add(backup);
    void backup.finally(() => running.delete(backup));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
    await chmod(path, 0o600);
  } catch (err) {
    // A DATA_DIR path too long for a socket name, say: the server runs; `npm run backup` then needs it stopped.
    logger.log('warn', { msg: 'backup socket not available; stop the server to back it up', error: err instanceof Error ? err.message : String(err) });
    return { close: async () => {} };
  }
  return {
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => void rm(path, { force: true }).finally(resolve));
        // A backup still streaming (its reader stalled, say) must not hold the shutdown: it ends
        // here, and `npm run backup` reports the archive unfinished and removes it.
        server.closeAllConnections();
      });
      // Each ended backup removes its staging folder (table copies, links to media) before exit.
      await Promise.allSettled(running);
    },
  };
}

/** Streams a running server's backup into `out()` (opened only then); false when no server listens in DATA_DIR. */
export async function backupFromServer(dataDir: string, out: () => Writable): Promise<boolean> {
  const res = await new Promise<import('node:http').IncomingMessage | null>((resolve, reject) => {
    const req = request({ socketPath: join(dataDir, BACKUP_SOCKET), path: '/backup', method: 'GET' }, resolve);
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? resolve(null) : reject(err)));
    req.end();
  });
  if (!res) return false;
  if (res.statusCode !== 200) throw new Error(`the server answered ${res.statusCode} to the backup request`);
  try {
    await pipeline(res, out());
  } catch {
    throw new Error('the running server could not finish the backup: see its log');
  }
  return true;
}
