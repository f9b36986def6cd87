// `npm run restore`: an archive of `npm run backup` into an empty data dir or database, as one
// transaction: the archive's migrations, its rows, the sequences set past them, then this
// version's newer migrations (an upgrade). Blobs go to the disk store as they stream by. Any
// failure (a truncated or altered archive, a full disk) rolls everything back and removes the
// files written: the target stays empty.
import { createReadStream, rmdirSync, rmSync } from 'node:fs';
import { mkdir, opendir, writeFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { isBlobFile, parseBlobManifest } from '../../adapters/blob-fs';
import { applyMigrations, appliedMigrations, bundledMigrations } from '../../db/migrate';
import { inTransaction, type DatabaseHandle, type RawQuery } from './session';
import { FORMAT, ident, manifestSchema, tablesInOrder, VERSION, type Manifest } from './tables';

export interface RestoreTarget {
  handle: DatabaseHandle;
  /** The disk store's root (DATA_DIR/blobs); absent when media live in S3 or R2. */
  blobRoot?: string;
}

/** An archive entry's name as a refusal shows it: one line, no terminal escapes, not too long. */
const shown = (name: string) => oneLine(JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name));
const oneLine = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');

/** The archive cannot go here, or is not one; nothing was changed. */
export class RestoreRefused extends Error {}

/** Rows per insert: up to 500, or fewer when they reach 1 MiB (large rows would hold a lot at once). */
const INSERT = { maxRows: 500, bytes: 1 << 20 };
const MAX_ROW_CHARS = 16 << 20;
const RESTORE_LOCK = 727_003;
const MAX_MANIFEST_BYTES = 1 << 20;

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function checkManifest(text: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new RestoreRefused('This is not an Orbital backup: its manifest is not JSON.');
  }
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    const ours = (value as Partial<Manifest> | null)?.format === FORMAT && (value as Partial<Manifest>).version === VERSION;
    const where = parsed.error.issues[0]?.path.join('.') || 'manifest';
    throw new RestoreRefused(ours ? `The archive's manifest is damaged (${where}): nothing was restored.` : 'This is not an Orbital backup of a version this server reads.');
  }
  const manifest = parsed.data;
  manifest.migrations.forEach((hash, i) => {
    if (bundledMigrations[i]?.hash !== hash) throw new RestoreRefused('This backup comes from a newer or different version of the server: restore it with that version.');
  });
  return manifest;
}

/**
 * The lines of a table's entry. Bounded: the largest row the API can store is far below
 * MAX_ROW_CHARS, and one endless line must be refused, not held until the process dies.
 */
async function* linesOf(entry: Readable, table: string): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of entry) {
    const lines = (rest + decoder.write(chunk as Buffer)).split('\n');
    rest = lines.pop()!;
    yield* lines;
    if (rest.length > MAX_ROW_CHARS) throw new RestoreRefused(`The archive is damaged: a row of table ${table} is longer than ${MAX_ROW_CHARS} characters.`);
  }
  rest += decoder.end();
  if (rest) yield rest;
}

async function insertRows(raw: RawQuery, table: string, lines: AsyncIterable<string>): Promise<number> {
  let batch: string[] = [];
  let bytes = 0;
  let count = 0;
  const flush = async () => {
    if (!batch.length) return;
    // Schema-qualified: an unqualified name would find pg_catalog's tables first.
    const insert = `insert into public.${ident(table)} select * from json_populate_recordset(null::public.${ident(table)}, $1::json)`;
    await raw(insert, [`[${batch.join(',')}]`]).catch((err: unknown) => {
      // Rows that are not JSON objects of this table, or that break its constraints.
      throw new RestoreRefused(`The archive is damaged: table ${table} holds a row this database refuses (${oneLine(err instanceof Error ? err.message : String(err))}).`);
    });
    count += batch.length;
    batch = [];
    bytes = 0;
  };
  for await (const line of lines) {
    if (!line) continue;
    batch.push(line);
    bytes += line.length;
    if (batch.length >= INSERT.maxRows || bytes >= INSERT.bytes) await flush();
  }
  await flush();
  return count;
}

/** Every serial and identity sequence of the schema, moved past the rows just inserted. */
async function resetSequences(raw: RawQuery): Promise<void> {
  const owned = await raw(
    `select s.oid::regclass::text as seq, t.oid::regclass::text as tbl, a.attname as col
     from pg_class s join pg_depend d on d.objid = s.oid and d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
     join pg_class t on t.oid = d.refobjid join pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid
     where s.relkind = 'S' and t.relnamespace = 'public'::regnamespace`,
  );
  for (const o of owned) {
    const col = ident(String(o.col));
    await raw(`select setval($1::regclass, coalesce((select max(${col}) from ${o.tbl}), 1), (select max(${col}) from ${o.tbl}) is not null)`, [o.seq]);
  }
}

/**
 * Whether any media file is under `path`. Folders alone do not count: an interrupted restore may
 * leave one it created just before the signal, with nothing in it.
 */
async function holdsFiles(path: string): Promise<boolean> {
  try {
    for await (const entry of await opendir(path, { recursive: true })) if (!entry.isDirectory()) return true;
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Removes the files a failed restore wrote and the folders left empty by that, and nothing else:
 * a concurrent restore that won may have written beside them.
 */
function removeWritten(objects: string, written: Set<string>): void {
  for (const file of written) {
    rmSync(file, { force: true });
    for (let dir = dirname(file); dir.startsWith(objects + sep); dir = dirname(dir)) {
      try {
        rmdirSync(dir);
      } catch {
        break; // not empty: someone else's files are in it
      }
    }
  }
  written.clear();
}

/** What an interrupted restore (Ctrl-C: no `catch` runs) must remove: the media files it wrote. */
export function removeRestored(target: RestoreTarget, written: Set<string>): void {
  if (target.blobRoot) removeWritten(join(target.blobRoot, 'objects'), written);
}

/** `written`: the media files written so far, for the caller to remove if the process is interrupted. */
export async function restoreFromFile(path: string, target: RestoreTarget, written = new Set<string>()): Promise<Manifest> {
  const objects = target.blobRoot && join(target.blobRoot, 'objects');
  const holdsMedia = () => new RestoreRefused(`${objects} already holds media: restore goes into an empty data dir.`);
  if (objects && (await holdsFiles(objects))) throw holdsMedia();
  try {
    return await inTransaction(target.handle, async ({ raw, exec }) => {
      // A second restore into the same database waits here, then finds it not empty.
      await raw('select pg_advisory_xact_lock($1)', [RESTORE_LOCK]);
      const [{ n }] = (await raw(`select count(*)::int as n from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'p')`)) as [{ n: number }];
      if (n > 0 || (await appliedMigrations(exec)).length > 0) throw new RestoreRefused('The database is not empty: restore goes into an empty database (or a new DATA_DIR).');

      const archive = extract();
      const reading = new Promise<void>((resolve, reject) => {
        const file = createReadStream(path);
        file.on('error', reject);
        archive.on('error', reject);
        archive.on('finish', resolve);
        file.pipe(archive);
      });
      reading.catch(() => undefined); // surfaced by the loop below, or awaited at the end
      let manifest: Manifest | undefined;
      /** The schema's own tables at the archive's level: rows go nowhere else. */
      let ours = new Set<string>();
      const restored = new Map<string, number>();
      let blobFiles = 0;
      for await (const entry of archive) {
        const name = entry.header.name;
        // The backup writes plain files only: a link or a folder entry is no part of one.
        if (entry.header.type !== 'file') throw new RestoreRefused(`Unexpected entry in the archive: ${shown(name)} (${entry.header.type}).`);
        if (!manifest) {
          if (name !== 'manifest.json' || (entry.header.size ?? 0) > MAX_MANIFEST_BYTES) throw new RestoreRefused('This is not an Orbital backup: it does not start with its manifest.');
          manifest = checkManifest(await readAll(entry));
          await applyMigrations(exec, bundledMigrations.slice(0, manifest.migrations.length));
          ours = new Set(await tablesInOrder(raw));
          continue;
        }
        const table = /^db\/([a-z_0-9]+)\.jsonl$/.exec(name)?.[1];
        if (table && ours.has(table) && manifest.tables.some((t) => t.name === table) && !restored.has(table)) {
          restored.set(table, await insertRows(raw, table, linesOf(entry, table)));
          continue;
        }
        const blob = /^blobs\/(.+)$/.exec(name)?.[1];
        if (blob && objects && manifest.blobs.included && isBlobFile(blob)) {
          const to = join(objects, blob);
          let content: string | Readable = entry;
          if (blob.endsWith('/manifest.json')) {
            // A media manifest names the files a download reads: only its own folder's parts.
            content = (entry.header.size ?? 0) <= MAX_MANIFEST_BYTES ? await readAll(entry) : '';
            if (!parseBlobManifest(content)) throw new RestoreRefused(`Unexpected entry in the archive: ${shown(name)} (not a media manifest this server writes).`);
          }
          await mkdir(dirname(to), { recursive: true, mode: 0o700 });
          if (written.has(to)) throw new RestoreRefused(`The archive is damaged: ${shown(name)} appears twice.`);
          // Counted as ours before it exists: a Ctrl-C while it is being written removes it too.
          // 'wx': a file already there (another restore's) is not ours to remove afterwards.
          written.add(to);
          await writeFile(to, content, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
            if (err.code === 'EEXIST') written.delete(to);
            throw err.code === 'EEXIST' ? holdsMedia() : err;
          });
          blobFiles++;
          continue;
        }
        throw new RestoreRefused(`Unexpected entry in the archive: ${shown(name)}.`);
      }
      await reading;
      if (!manifest) throw new RestoreRefused('The archive is empty.');
      for (const t of manifest.tables) {
        if (restored.get(t.name) !== t.rows) throw new RestoreRefused(`The archive is incomplete: table ${t.name} has ${restored.get(t.name) ?? 0} of ${t.rows} rows.`);
      }
      if (objects && manifest.blobs.included && blobFiles !== manifest.blobs.files) {
        throw new RestoreRefused(`The archive is incomplete: ${blobFiles} of ${manifest.blobs.files} media files.`);
      }
      await resetSequences(raw);
      await applyMigrations(exec);
      return manifest;
    });
  } catch (err) {
    if (objects) removeWritten(objects, written);
    if (err instanceof Error && !(err instanceof RestoreRefused) && /Unexpected end of data|unexpected end|invalid tar|checksum/i.test(err.message)) {
      throw new RestoreRefused(`The archive is damaged (${err.message}); nothing was restored.`);
    }
    throw err;
  }
}

/** The manifest an archive starts with (checked as a restore would check it). */
export async function readManifest(path: string): Promise<Manifest> {
  const archive = extract();
  const file = createReadStream(path);
  file.on('error', (err) => archive.destroy(err));
  file.pipe(archive);
  try {
    for await (const entry of archive) {
      if (entry.header.name !== 'manifest.json' || (entry.header.size ?? 0) > MAX_MANIFEST_BYTES) break;
      return checkManifest(await readAll(entry));
    }
  } finally {
    file.destroy();
    archive.destroy();
  }
  throw new RestoreRefused('This is not an Orbital backup: it does not start with its manifest.');
}
