// register, login, logout, whoami, and the key pair's life: backup, reset.
import { ApiError, generateUserKeys, keyFingerprint, newRecoverySecret, openKeyBackup, sealKeyBackup } from '../client';
import type { PublicJwk } from '../client';
import { Ctx, UsageError } from './orbital-context';
import { askHidden, confirm, readStdin } from './orbital-prompt';

async function password(ctx: Ctx, twice = false): Promise<string> {
  if (ctx.values['password-stdin']) return (await readStdin()).split(/\r?\n/)[0] ?? '';
  if (ctx.env.ORBITAL_PASSWORD) return ctx.env.ORBITAL_PASSWORD;
  const first = await askHidden('Password: ');
  if (twice && (await askHidden('Password again: ')) !== first) throw new UsageError('the passwords differ');
  return first;
}

async function recoverySecret(ctx: Ctx, question: string): Promise<string> {
  if (ctx.env.ORBITAL_RECOVERY_SECRET) return ctx.env.ORBITAL_RECOVERY_SECRET;
  ctx.note(
    'This device has no private key, and your account has a key backup on the server. It opens with the recovery secret ' +
      '(XXXX-XXXX-…, printed once by `orbital register --backup` or `orbital keys backup`; it is not your password).',
  );
  return askHidden(question);
}

function sameKey(a: JsonWebKey | Record<string, unknown>, b: JsonWebKey | Record<string, unknown>) {
  return a.n === b.n && a.e === b.e;
}

export async function register(ctx: Ctx) {
  const username = ctx.arg(0, 'username');
  if (!/^[A-Za-z0-9_]{3,50}$/.test(username)) throw new UsageError('a username is 3–50 letters, digits or underscores');
  const existing = ctx.home.identity();
  if (existing?.user_id) throw new UsageError(`${ctx.home.dir} already holds the key of ${existing.username}; use --home for another account`);
  const pass = await password(ctx, true);
  // The server's rule, said plainly before anything is sent or written.
  if (pass.length < 12 || pass.length > 256) throw new UsageError('the password must be 12 to 256 characters long');
  const api = ctx.api();
  // The key pair is on disk before the account exists: a crash in between loses nothing (login adopts it).
  const reuse = existing && existing.username.toLowerCase() === username.toLowerCase();
  const keys = reuse ? { publicJwk: existing.public_key, privateJwk: existing.private_key } : await generateUserKeys();
  ctx.home.saveIdentity(api.server, { id: '', username }, keys);
  let auth: Awaited<ReturnType<typeof api.register>>;
  try {
    auth = await api.register({ username, password: pass, public_key: keys.publicJwk as PublicJwk, ...(ctx.values.invite ? { invite_code: ctx.values.invite } : {}) });
  } catch (err) {
    // A refusal (name taken, bad invite …) created no account: leave no key pair behind. A lost
    // answer (network, 5xx) may have created one, so the key stays for login to adopt.
    if (err instanceof ApiError && err.status < 500 && !reuse) ctx.home.forgetIdentity();
    throw err;
  }
  ctx.home.saveIdentity(api.server, auth.user, keys);
  const fingerprint = await keyFingerprint(keys.publicJwk);
  const data: Record<string, unknown> = { user: auth.user, fingerprint, home: ctx.home.dir };
  const lines = [
    `Registered ${auth.user.username} (${auth.user.id}) on ${api.server}.`,
    `Key fingerprint: ${fingerprint}`,
    `Private key: ${ctx.home.dir}/identity.json (mode 0600). Without it or a backup, your orbits cannot be read.`,
  ];
  if (ctx.values.backup) {
    const secret = await storeBackup(ctx, keys.privateJwk, auth.user.id);
    data.recovery_secret = secret;
    lines.push(`Key backup stored on the server. Recovery secret (write it down; it is not your password): ${secret}`);
  }
  ctx.out(lines, data);
}

async function storeBackup(ctx: Ctx, privateJwk: JsonWebKey, userId: string): Promise<string> {
  const secret = ctx.env.ORBITAL_RECOVERY_SECRET || newRecoverySecret();
  await ctx.api().putKeyBackup(await sealKeyBackup(privateJwk, secret, userId));
  return secret;
}

export async function login(ctx: Ctx) {
  const username = ctx.arg(0, 'username');
  const identity = ctx.home.identity();
  if (identity?.user_id && identity.username.toLowerCase() !== username.toLowerCase()) {
    throw new UsageError(`${ctx.home.dir} holds the key of ${identity.username}; use --home for another account`);
  }
  const api = ctx.api();
  const auth = await api.login(username, await password(ctx));
  const lines = [`Logged in as ${auth.user.username} on ${api.server}.`];
  let keyState = 'local';
  if (identity && !identity.user_id && sameKey(identity.public_key, auth.user.public_key)) {
    // A registration whose answer was lost: the key pair on disk is this account's.
    ctx.home.saveIdentity(api.server, auth.user, { publicJwk: identity.public_key, privateJwk: identity.private_key });
  } else if (identity?.user_id) {
    if (!sameKey(identity.public_key, auth.user.public_key)) {
      keyState = 'mismatch';
      lines.push('Warning: the server has another public key for you than this home holds (reset from another device?).');
    }
  } else {
    try {
      const backup = await api.getKeyBackup();
      const privateJwk = await openKeyBackup(backup, await recoverySecret(ctx, 'Recovery secret: '), auth.user.id);
      if (!sameKey(privateJwk, auth.user.public_key)) throw new Error('the key backup does not match your current public key');
      ctx.home.saveIdentity(api.server, auth.user, { publicJwk: auth.user.public_key as JsonWebKey, privateJwk });
      keyState = 'restored';
      lines.push('Private key restored from your key backup.');
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 'NOT_FOUND')) throw err;
      keyState = 'missing';
      lines.push('No private key on this device and no key backup: `orbital keys reset` makes a new key pair (members then deliver the orbit keys again).');
    }
  }
  ctx.out(lines, { user: auth.user, key: keyState });
}

export async function logout(ctx: Ctx) {
  await ctx.api().logout();
  ctx.out('Logged out.', { logged_out: true });
}

export async function whoami(ctx: Ctx) {
  const secure = ctx.secure();
  const me = await secure.api.me();
  const fingerprint = await secure.fingerprint();
  ctx.out([`${me.username} (${me.id}) on ${secure.api.server}`, `Key fingerprint: ${fingerprint}`, `Key version: ${me.key_version}`], { user: me, fingerprint });
}

export async function keysBackup(ctx: Ctx) {
  const secure = ctx.secure();
  const secret = await storeBackup(ctx, secure.identity.keys.privateJwk, secure.identity.userId);
  ctx.out(
    [`Key backup stored on the server.`, `Recovery secret (write it down; it is not your password): ${secret}`],
    { stored: true, recovery_secret: secret },
  );
}

export async function keysReset(ctx: Ctx) {
  const api = ctx.api();
  const me = await api.me();
  if (!(await confirm(`Replace the key pair of ${me.username}? Every orbit goes back to "pending" until a member delivers the key again.`, ctx.values.yes === true))) {
    return ctx.out('Kept the current key pair.', { reset: false });
  }
  const keys = await generateUserKeys();
  // Saved first: a crash after the server switched keys must not lose the new private key.
  ctx.home.saveIdentity(api.server, me, keys);
  await api.setPublicKey(keys.publicJwk as Record<string, unknown> & { kty: string });
  const fingerprint = await keyFingerprint(keys.publicJwk);
  ctx.out([`New key pair in place. Key fingerprint: ${fingerprint}`, 'Ask a member of each orbit to run `orbital keys deliver`.'], { reset: true, fingerprint });
}
