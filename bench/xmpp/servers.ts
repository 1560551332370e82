/**
 * The XMPP servers bench:xmpp compares, each started for the run in a temporary folder, on a
 * loopback port, and stopped (the folder removed) afterwards, also on failure or Ctrl-C:
 *
 * - Prosody (Debian `prosody`): c2s on 127.0.0.1 only, s2s and HTTP off, `muc` with `muc_mam`,
 *   file storage (`internal`), in-band registration allowed from loopback, plain SASL allowed
 *   without TLS. Runs as the `prosody` user when started by root.
 * - ejabberd (Debian `ejabberd`): the BEAM started directly (`erl -s ejabberd`) without Erlang
 *   distribution, so no epmd and no distribution port; c2s on 127.0.0.1 without shaper,
 *   `mod_muc` with `mod_mam` (Mnesia), in-band registration. Runs as the `ejabberd` user when
 *   started by root.
 * - Perch: a Standard Edition server on SQLite (the shipped durability) with `PERCH_XMPP_PORT`,
 *   its users and rooms seeded as bench:load does.
 *
 * Every room is persistent and archived on all three, as Perch's rooms always are.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export type ServerName = 'perch' | 'prosody' | 'ejabberd';
export const SERVER_NAMES: ServerName[] = ['perch', 'prosody', 'ejabberd'];

/** How to install what a server needs, for the failure message when it is missing. */
export const INSTALL: Record<ServerName, { binary: string; hint: string }> = {
  perch: { binary: process.execPath, hint: '' },
  prosody: {
    binary: '/usr/bin/prosody',
    hint: 'install prosody: apt-get install -y --no-install-recommends prosody (then: systemctl disable --now prosody)',
  },
  ejabberd: {
    binary: '/usr/sbin/ejabberdctl',
    hint: 'install ejabberd: apt-get install -y --no-install-recommends ejabberd (then: systemctl disable --now ejabberd)',
  },
};

/** The servers of `names` whose programs are not installed. */
export function missingServers(names: ServerName[]): ServerName[] {
  return names.filter((n) => !fs.existsSync(INSTALL[n].binary));
}

export interface RunningXmppServer {
  name: ServerName;
  host: string;
  port: number;
  domain: string;
  /** The multi-user chat service's domain. */
  mucDomain: string;
  /** The server's temporary folder (removed by stop). */
  dir: string;
  /** The bare JID of room number `r` of the run's layout. */
  roomJid(r: number): string;
  /** Accounts are registered in-band by the clients (Prosody, ejabberd). */
  registerInBand: boolean;
  /** The server's process and its descendants (ejabberd: the BEAM and erl_child_setup). */
  pids(): number[];
  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and removes its folder. */
  stop(): Promise<void>;
  /** The same at once, synchronously (signal and exit handlers). */
  stopNow(): void;
  /** The last lines the server wrote (for a failure message). */
  logs(): string;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Resident memory (MB) and CPU time (s) of a set of processes, from /proc. */
export function treeUsage(pids: number[]): { rssMb: number; cpuS: number } {
  let rssKb = 0;
  let ticks = 0;
  for (const pid of pids) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      rssKb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The process ended while we looked.
    }
  }
  return { rssMb: rssKb / 1024, cpuS: ticks / 100 };
}

/** The command name of a process (/proc/<pid>/comm), or '' once it is gone. */
export function processName(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** `root` and every process descended from it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone.
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** uid/gid of a system user, to drop root for the daemon; undefined when not root. */
function systemUser(name: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Resolves once something accepts TCP connections on the port, or rejects at the deadline. */
async function waitForPort(
  port: number,
  proc: ChildProcess,
  deadlineMs: number,
  logs: () => string,
): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`exited (${proc.exitCode ?? proc.signalCode}) while starting:\n${logs()}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`did not listen on 127.0.0.1:${port} within ${deadlineMs} ms:\n${logs()}`);
}

/** Starts a daemon in `dir` (owned by `user` when root), with its output kept for errors. */
async function startDaemon(
  name: ServerName,
  dir: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  port: number,
  user: string,
  domain: string,
  mucDomain: string,
): Promise<RunningXmppServer> {
  const ids = systemUser(user);
  if (ids) execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, dir]);
  let output = '';
  const proc = spawn(command, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(ids ?? {}),
  });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const logs = () => {
    let fileLogs = '';
    for (const f of ['server.log', 'logs/ejabberd.log', 'logs/error.log']) {
      try {
        fileLogs += fs.readFileSync(path.join(dir, f), 'utf8').slice(-5000);
      } catch {
        // Not written (yet).
      }
    }
    return `${output}${fileLogs}`.slice(-8000);
  };
  let stopped = false;
  const pids = () => (proc.pid ? processTree(proc.pid) : []);
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    for (const pid of pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const stop = async () => {
    if (stopped) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    }
    stopNow();
  };
  try {
    await waitForPort(port, proc, 60_000, logs);
  } catch (err) {
    stopNow();
    throw new Error(`${name}: ${(err as Error).message}`);
  }
  return {
    name,
    host: '127.0.0.1',
    port,
    domain,
    mucDomain,
    dir,
    // The first member's join creates the room (Prosody and ejabberd create rooms on demand).
    roomJid: (r) => `xb-${r}@${mucDomain}`,
    registerInBand: true,
    pids,
    stop,
    stopNow,
    logs,
  };
}

/** The XMPP domain every server is configured to serve. */
export const DOMAIN = 'bench.localhost';
const MUC_DOMAIN = `conference.${DOMAIN}`;

/** Prosody 0.12 with muc + muc_mam, file storage, on a loopback port. */
export async function startProsody(maxOccupants: number): Promise<RunningXmppServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-xmppbench-prosody-'));
  const port = await freePort();
  fs.mkdirSync(path.join(dir, 'data'));
  fs.mkdirSync(path.join(dir, 'certs'));
  const config = `-- Written by bench:xmpp for one run; removed afterwards.
pidfile = "${dir}/prosody.pid"
data_path = "${dir}/data"
log = { { levels = { min = "warn" }, to = "file", filename = "${dir}/server.log" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${port} }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster", "saslauth", "disco", "register", "ping", "posix" }
modules_disabled = { "s2s", "offline", "c2s_legacy" }
-- Plain SASL without TLS: acceptable on loopback only, for a benchmark.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = true
registration_allowlist = { "127.0.0.0/8" }
authentication = "internal_plain"
storage = "internal"
limits = { }
VirtualHost "${DOMAIN}"
Component "${MUC_DOMAIN}" "muc"
  modules_enabled = { "muc_mam" }
  muc_room_locking = false
  muc_room_default_persistent = true
  muc_log_by_default = true
  muc_log_all_rooms = true
  muc_room_cache_size = 100000
  max_history_messages = 20
  muc_max_occupants = ${maxOccupants}
`;
  const cfg = path.join(dir, 'prosody.cfg.lua');
  fs.writeFileSync(cfg, config);
  return startDaemon(
    'prosody',
    dir,
    '/usr/bin/prosody',
    ['--config', cfg, '-F'],
    {},
    port,
    'prosody',
    DOMAIN,
    MUC_DOMAIN,
  );
}

/** ejabberd 23.01 with mod_muc + mod_mam on Mnesia, no Erlang distribution, loopback port. */
export async function startEjabberd(maxOccupants: number): Promise<RunningXmppServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-xmppbench-ejabberd-'));
  const port = await freePort();
  fs.mkdirSync(path.join(dir, 'logs'));
  fs.mkdirSync(path.join(dir, 'spool'));
  const config = `# Written by bench:xmpp for one run; removed afterwards.
hosts:
  - "${DOMAIN}"
loglevel: warning
log_rotate_count: 0
listen:
  - port: ${port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    # Plain SASL without TLS: acceptable on loopback only, for a benchmark.
    starttls_required: false
auth_method: internal
auth_password_format: plain
registration_timeout: infinity
max_fsm_queue: 100000
acl:
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
  register:
    allow: all
  muc_create:
    allow: all
shaper_rules: {}
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_register:
    access: register
    ip_access: all
    welcome_message: {}
  mod_mam:
    db_type: mnesia
    default: always
  mod_muc:
    host: "${MUC_DOMAIN}"
    db_type: mnesia
    access: all
    access_create: muc_create
    access_persistent: muc_create
    max_users: ${maxOccupants}
    max_user_conferences: 100
    max_users_presence: ${maxOccupants}
    history_size: 20
    min_message_interval: 0
    min_presence_interval: 0
    default_room_options:
      persistent: true
      mam: true
      max_users: ${maxOccupants}
`;
  const cfg = path.join(dir, 'ejabberd.yml');
  fs.writeFileSync(cfg, config);
  return startDaemon(
    'ejabberd',
    dir,
    '/usr/bin/erl',
    [
      '+K',
      'true',
      '+P',
      '250000',
      '-noinput',
      '-mnesia',
      'dir',
      `"${path.join(dir, 'spool')}"`,
      '-s',
      'ejabberd',
    ],
    {
      EJABBERD_CONFIG_PATH: cfg,
      EJABBERD_LOG_PATH: path.join(dir, 'logs', 'ejabberd.log'),
      ERL_LIBS: '/usr/lib/x86_64-linux-gnu',
      ERL_CRASH_DUMP: path.join(dir, 'logs', 'erl_crash.dump'),
      ERL_MAX_PORTS: '32000',
      ERL_MAX_ETS_TABLES: '1400',
    },
    port,
    'ejabberd',
    DOMAIN,
    MUC_DOMAIN,
  );
}
