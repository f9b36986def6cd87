// Where a backup reads from and a restore writes to, from the server's own configuration.
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import { join, resolve } from 'node:path';
import type { Config } from '../../config';
import type { BackupSource } from './archive';
import type { RestoreTarget } from './restore';
import type { DatabaseHandle } from './session';

export interface OpenDatabase {
  pool?: pg.Pool;
  pglite?: PGlite;
}

function handleOf(database: OpenDatabase): DatabaseHandle {
  if (database.pool) return { pool: database.pool };
  if (database.pglite) return { pglite: database.pglite };
  throw new Error('no database handle');
}

const blobRootOf = (config: Config) => (config.BLOB_STORE === 'disk' ? resolve(join(config.DATA_DIR, 'blobs')) : undefined);

export const backupSource = (config: Config, database: OpenDatabase): BackupSource => ({
  handle: handleOf(database),
  blobStore: config.BLOB_STORE === 'disk' ? 'disk' : 's3',
  blobRoot: blobRootOf(config),
  stagingParent: resolve(config.DATA_DIR),
});

export const restoreTarget = (config: Config, database: OpenDatabase): RestoreTarget => ({ handle: handleOf(database), blobRoot: blobRootOf(config) });
