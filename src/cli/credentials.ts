import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

// Tokens from `perch login`, one per server, in the user's config directory. The directory is
// created owner-only (0700) and the file written owner-only (0600) through a temp file and a
// rename, so that a token is never readable by others, not even for a moment.

const fileSchema = z.object({
  servers: z.record(
    z.string(),
    z.object({ token: z.string(), login: z.string(), expiresAt: z.number() }),
  ),
});

export type Credentials = z.infer<typeof fileSchema>;
export type ServerCredentials = Credentials['servers'][string];

/** `$XDG_CONFIG_HOME/perch/credentials.json`, or `~/.config/perch/credentials.json`. */
export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME)
      ? env.XDG_CONFIG_HOME
      : path.join(os.homedir(), '.config');
  return path.join(base, 'perch', 'credentials.json');
}

export async function readCredentials(file = credentialsPath()): Promise<Credentials> {
  let raw: string;
  try {
    raw = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { servers: {} };
    throw err;
  }
  try {
    const parsed = fileSchema.safeParse(JSON.parse(raw));
    // A damaged file holds nothing usable; the next login rewrites it.
    return parsed.success ? parsed.data : { servers: {} };
  } catch {
    return { servers: {} };
  }
}

export async function writeCredentials(
  creds: Credentials,
  file = credentialsPath(),
): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  await fs.chmod(tmp, 0o600);
  await fs.rename(tmp, file);
}

/** Stores (or with `undefined` forgets) the token for one server. */
export async function saveServerCredentials(
  server: string,
  entry: ServerCredentials | undefined,
  file = credentialsPath(),
): Promise<void> {
  const creds = await readCredentials(file);
  if (entry) creds.servers[server] = entry;
  else delete creds.servers[server];
  await writeCredentials(creds, file);
}
