// Looks for a plaintext canary everywhere the server keeps or writes things: every table of the
// database (or a pg_dump of it), every file under its data folder, and its log lines. The canary is
// searched raw, hex-encoded (bytea as text) and in the three base64 alignments (plaintext that was
// only base64-encoded, never encrypted).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Target } from './types';

/** Every form the canary could take without encryption. */
export function canaryForms(canary: string): string[] {
  const bytes = Buffer.from(canary, 'utf8');
  const forms = [canary, bytes.toString('hex')];
  for (let shift = 0; shift < 3; shift++) {
    const padded = Buffer.concat([Buffer.alloc(shift, 0x20), bytes]);
    // Drop the characters touched by the prefix or by the end of input.
    const b64 = padded.toString('base64');
    const start = Math.ceil((shift * 4) / 3) + 1;
    forms.push(b64.slice(start, b64.length - 4));
  }
  return forms.filter((f) => f.length >= 8);
}

function findIn(text: string, forms: string[]): string | undefined {
  const lower = text.toLowerCase();
  return forms.find((f) => text.includes(f) || (/^[0-9a-f]+$/.test(f) && lower.includes(f)));
}

/** Every row of every table, as Postgres prints it (bytea as hex). */
export async function scanDatabase(t: Target, canary: string): Promise<{ hits: string[]; tables: number; rows: number }> {
  const forms = canaryForms(canary);
  const tables = await t.sql<{ table_schema: string; table_name: string }>(
    `select table_schema, table_name from information_schema.tables
      where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema') order by 1, 2`,
  );
  const hits: string[] = [];
  let rows = 0;
  for (const { table_schema, table_name } of tables) {
    const name = `"${table_schema.replace(/"/g, '""')}"."${table_name.replace(/"/g, '""')}"`;
    const found = await t.sql<{ row: string }>(`select r::text as row from ${name} r`);
    rows += found.length;
    for (const { row } of found) {
      const form = findIn(row, forms);
      if (form) hits.push(`${table_schema}.${table_name}: ${form} in ${row.slice(0, 200)}`);
    }
  }
  return { hits, tables: tables.length, rows };
}

/** A full pg_dump (schema and data) of a real Postgres database; null when pg_dump is not installed. */
export function scanPgDump(databaseUrl: string, canary: string): { hits: string[]; bytes: number } | null {
  const dump = spawnSync('pg_dump', ['--no-owner', '--dbname', databaseUrl], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if ((dump.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
  if (dump.error || dump.status !== 0) throw new Error(`pg_dump failed: ${dump.error?.message ?? dump.stderr}`);
  const forms = canaryForms(canary);
  const hits = dump.stdout.split('\n').filter((line) => findIn(line, forms)).map((line) => line.slice(0, 200));
  return { hits, bytes: dump.stdout.length };
}

/** Every file below `root` (blobs, parts, manifests, the embedded database's files). */
export function scanFiles(root: string, canary: string): { hits: string[]; files: number; bytes: number } {
  const forms = canaryForms(canary).map((f) => Buffer.from(f, 'utf8'));
  const hits: string[] = [];
  let files = 0;
  let bytes = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      const st = statSync(path);
      if (st.isDirectory()) walk(path);
      else if (st.isFile()) {
        files++;
        const content = readFileSync(path);
        bytes += content.length;
        const form = forms.find((f) => content.includes(f));
        if (form) hits.push(`${relative(root, path)}: ${form.toString()}`);
      }
    }
  };
  walk(root);
  return { hits, files, bytes };
}

export function scanLines(lines: string[], canary: string): string[] {
  const forms = canaryForms(canary);
  return lines.filter((line) => findIn(line, forms));
}
