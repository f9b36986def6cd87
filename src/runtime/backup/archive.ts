// `npm run backup`: one snapshot of every table (rows as JSON lines) and the disk store's files of
// every upload and file those rows name, in a tar archive with a manifest first. Inside the
// snapshot the rows are written to a staging folder and the blobs hard-linked next to them (fast,
// and a link outlives a deletion), so the database is held only that long; the archive is then
// packed from the staging folder while the server goes on.
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { appliedMigrations } from '../../db/migrate';
import { inSnapshot, type DatabaseHandle, type RawQuery } from './session';
import { newStaging } from './staging';
import { FORMAT, ident, tablesInOrder, VERSION, type Manifest } from './tables';

export interface BackupSource {
  handle: DatabaseHandle;
  blobStore: 'disk' | 's3' | 'r2';
  /** The disk store's root (DATA_DIR/blobs); its files are linked into the staging folder. */
  blobRoot?: string;
  /** A folder on the blobs' filesystem (hard links cannot cross filesystems): DATA_DIR. */
  stagingParent: string;
}

/** Rows per fetch: from 1 to 2,000, as many as make about 1 MiB at the sizes seen so far. */
const FETCH = { maxRows: 2000, firstRows: 64, bytes: 1 << 20 };

async function dumpTable(raw: RawQuery, table: string, path: string): Promise<number> {
  const file = await open(path, 'wx', 0o600);
  let rows = 0;
  try {
    await raw(`declare backup_rows no scroll cursor for select row_to_json(t)::text as r from public.${ident(table)} t`);
    // Sized by bytes, not rows: 2,000 rows of 64 KiB held at once grew the embedded server (whose
    // WASM heap never shrinks) by 1.3 GB for good.
    let count = FETCH.firstRows;
    for (;;) {
      const batch = await raw(`fetch ${count} from backup_rows`);
      if (!batch.length) break;
      const text = batch.map((b) => b.r).join('\n') + '\n';
      await file.write(text);
      rows += batch.length;
      count = Math.max(1, Math.min(FETCH.maxRows, Math.floor((FETCH.bytes * batch.length) / text.length)));
    }
    await raw('close backup_rows');
  } finally {
    await file.close();
  }
  return rows;
}

/** Links the files of every upload and file the snapshot names; counts the ones already gone. */
async function linkBlobs(raw: RawQuery, root: string, into: string) {
  const keys = (await raw(`select distinct blob_key as key from media where status in ('uploading', 'complete')`)).map((r) => String(r.key));
  const out = { files: 0, bytes: 0, missing: 0 };
  for (const key of keys) {
    const from = join(root, 'objects', key);
    let names: string[];
    try {
      names = (await readdir(from)).filter((n) => !n.endsWith('.tmp'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      out.missing++;
      continue;
    }
    await mkdir(join(into, key), { recursive: true, mode: 0o700 });
    for (const name of names) {
      try {
        await link(join(from, name), join(into, key, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // a part replaced meanwhile: the rows do not name it
        throw err;
      }
      out.files++;
      out.bytes += (await stat(join(into, key, name))).size;
    }
  }
  return out;
}

async function* filesUnder(dir: string, prefix: string): AsyncGenerator<{ name: string; path: string }> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory()) yield* filesUnder(join(dir, e.name), `${prefix}${e.name}/`);
    else yield { name: `${prefix}${e.name}`, path: join(dir, e.name) };
  }
}

/** Writes the archive to `out` (a file, or the backup socket's answer) and returns its manifest. */
export async function writeBackup(source: BackupSource, out: Writable): Promise<Manifest> {
  const staging = await newStaging(source.stagingParent);
  try {
    await mkdir(join(staging, 'db'), { mode: 0o700 });
    const manifest = await inSnapshot(source.handle, async ({ raw, exec }) => {
      const migrations = await appliedMigrations(exec);
      const tables: Manifest['tables'] = [];
      for (const name of await tablesInOrder(raw)) tables.push({ name, rows: await dumpTable(raw, name, join(staging, 'db', `${name}.jsonl`)) });
      const included = source.blobStore === 'disk' && source.blobRoot !== undefined;
      const blobs = included ? await linkBlobs(raw, source.blobRoot!, join(staging, 'blobs')) : { files: 0, bytes: 0, missing: 0 };
      const result: Manifest = { format: FORMAT, version: VERSION, created_at: new Date().toISOString(), migrations, tables, blobs: { store: source.blobStore, included, ...blobs } };
      if (!included) result.note = `Media are in ${source.blobStore.toUpperCase()}, not in this archive: back the bucket up with the store's own tools (versioning or replication).`;
      return result;
    });
    await writeFile(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2), { mode: 0o600 });

    const tar = pack();
    const packed = pipeline(tar, out);
    // A reader gone mid-archive (Ctrl-C on `npm run backup`) ends the pipeline before the entries:
    // stop adding then, with its error. Until awaited below, its rejection must not go unhandled.
    packed.catch(() => undefined);
    const whilePacking = <T>(work: Promise<T>) => Promise.race([work, packed.then(() => work)]);
    const files = [
      { name: 'manifest.json', path: join(staging, 'manifest.json') },
      ...manifest.tables.map((t) => ({ name: `db/${t.name}.jsonl`, path: join(staging, 'db', `${t.name}.jsonl`) })),
    ];
    const add = async (f: { name: string; path: string }) => {
      const { size, mtime } = await stat(f.path);
      await new Promise<void>((resolve, reject) => {
        const entry = tar.entry({ name: f.name, size, mtime, mode: 0o600 }, (err) => (err ? reject(err) : resolve()));
        pipeline(createReadStream(f.path), entry).catch(reject);
      });
    };
    for (const f of files) await whilePacking(add(f));
    for await (const f of filesUnder(join(staging, 'blobs'), 'blobs/')) await whilePacking(add(f));
    tar.finalize();
    await packed;
    return manifest;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Where this process writes the archive before renaming it to `path`: its own file, so two backups
 * into one path each write a whole archive (the last rename wins) instead of sharing one.
 */
export const partialOf = (path: string) => `${path}.${process.pid}.partial`;

/** The archive written to `path` whole or not at all (a `.partial` file renamed at the end). */
export async function backupToFile(source: BackupSource, path: string): Promise<Manifest> {
  await mkdir(dirname(path), { recursive: true });
  const partial = partialOf(path);
  try {
    const manifest = await writeBackup(source, createWriteStream(partial, { mode: 0o600 }));
    await rename(partial, path);
    return manifest;
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
}
