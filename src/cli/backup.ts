// `npm run backup -- <file>`: a consistent snapshot of the server's data into one archive, while it
// runs. Embedded database: asked of the running server over its socket in DATA_DIR (or, with the
// server stopped, read here); Postgres: read here, beside the server. Media in the disk store are
// included; media in S3 are not (the archive says so).
import { createWriteStream, rmSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadNodeConfig } from '../runtime/node';
import { fileArgument, runCommand, withDatabase } from './entry';
import { backupToFile, partialOf } from '../runtime/backup/archive';
import { readManifest } from '../runtime/backup/restore';
import { backupFromServer } from '../runtime/backup/socket';
import { backupSource } from '../runtime/backup/source';
import { removeStaging } from '../runtime/backup/staging';
import type { Manifest } from '../runtime/backup/tables';

const USAGE = `Usage: npm run backup -- <file>

Writes one archive (tar) with every table of the database and, with the disk store, every media
file the rows name; the server may keep running. Uses the server's configuration (DATABASE_URL,
DATA_DIR, BLOB_STORE). Restore it with \`npm run restore -- <file>\` into an empty data dir or database.`;

function summary(file: string, m: Manifest): string {
  const rows = m.tables.reduce((a, t) => a + t.rows, 0);
  const media = m.blobs.included ? `${m.blobs.files} media files (${m.blobs.bytes} bytes)` : 'no media files';
  const lines = [`Backed up ${rows} rows in ${m.tables.length} tables and ${media} to ${file}.`];
  if (m.blobs.missing) lines.push(`Warning: ${m.blobs.missing} uploads named by the database had no files on this machine's disk store.`);
  if (m.note) lines.push(m.note);
  return lines.join('\n');
}

async function main(): Promise<number> {
  const arg = fileArgument(process.argv.slice(2), USAGE);
  if (typeof arg === 'number') return arg;
  const file = resolve(arg);
  const config = await loadNodeConfig();
  removeStaging(config.DATA_DIR, 'gone');
  // Ctrl-C runs no `finally`: what this run wrote so far goes with it.
  const interrupted = () => {
    rmSync(partialOf(file), { force: true });
    removeStaging(config.DATA_DIR, 'mine');
    process.exit(130);
  };
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);

  if (!config.DATABASE_URL) {
    const partial = partialOf(file);
    try {
      if (await backupFromServer(config.DATA_DIR, () => createWriteStream(partial, { mode: 0o600 }))) {
        const manifest = await readManifest(partial);
        await rename(partial, file);
        console.log(summary(file, manifest));
        return 0;
      }
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
  }
  // Postgres, or an embedded database no server has open.
  const manifest = await withDatabase(config, (database) => backupToFile(backupSource(config, database), file));
  console.log(summary(file, manifest));
  return 0;
}

runCommand('backup', main);
