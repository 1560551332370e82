// What the high-availability tests share: a pool of two front ends on one multi-host store, a
// poster that records what was acknowledged, and the checks that nothing acknowledged was lost.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMessageIn, range, type Http } from '../e2e/helpers.js';
import { cleanup, startServer, type TestServer } from '../harness/server.js';
import type { WsClient } from '../harness/ws-client.js';

export interface HaPool {
  fe1: TestServer;
  fe2: TestServer;
  stop(): Promise<void>;
}

/** Two front ends of pool1 on `storeUrl`, sharing a file store; stop() removes everything. */
export async function startHaPool(storeUrl: string): Promise<HaPool> {
  const fileStore = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-ha-files-'));
  const started: TestServer[] = [];
  const stop = async () => {
    for (const server of started.reverse()) await cleanup(server);
    fs.rmSync(fileStore, { recursive: true, force: true });
  };
  const frontEnd = async (name: string) => {
    const server = await startServer({
      storeUrl,
      adminPassword: 'Pw1!ha-admin-password',
      startDeadlineMs: 90_000,
      env: {
        PERCH_POOL: 'pool1',
        PERCH_FRONT_END: name,
        PERCH_POOL_HEARTBEAT_MS: '500',
        PERCH_FILE_STORE_DIR: fileStore,
      },
    });
    started.push(server);
    return server;
  };
  try {
    return { fe1: await frontEnd('fe1'), fe2: await frontEnd('fe2'), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface Ack {
  text: string;
  at: number;
}

/**
 * Posts one message after another until told to stop, retrying a failed post with the same
 * clientId (so a post whose answer was lost is not written twice); records what was acknowledged.
 */
export function poster(http: Http, roomId: number) {
  const acks: Ack[] = [];
  let failures = 0;
  let stopping = false;
  const done = (async () => {
    for (let i = 0; !stopping && i < 5_000; i++) {
      const text = `post ${i}`;
      for (let attempt = 0; !stopping; attempt++) {
        const answer = await http
          .call('POST', `/api/v1/rooms/${roomId}/messages`, { text, clientId: `c-${i}` })
          .catch(() => ({ status: 0, body: {} }));
        if (answer.status === 200 || answer.status === 201) {
          acks.push({ text, at: Date.now() });
          break;
        }
        failures += 1;
        if (attempt > 600) throw new Error(`post ${i} failed for a minute: ${answer.status}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  })();
  return {
    acks,
    failures: () => failures,
    async stop() {
      stopping = true;
      await done;
    },
  };
}

/** Waits until `check` holds, polling; fails the test after the deadline. */
export async function until(
  what: string,
  check: () => boolean,
  deadlineMs = 60_000,
): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The time without service around `failedAt`: last ack before it to the first after, in ms. */
export function outage(acks: readonly Ack[], failedAt: number): number {
  const firstAfter = acks.find((a) => a.at > failedAt)!;
  const lastBefore = acks.filter((a) => a.at <= failedAt).at(-1)!;
  return firstAfter.at - lastBefore.at;
}

/**
 * Every acknowledged post is in the room's history, once, in order, and nothing else; the
 * sequence has no gap; and `listener` (joined before the first post) received every one live,
 * in order. Returns the last sequence number.
 */
export async function assertNothingLost(
  http: Http,
  roomId: number,
  acks: readonly Ack[],
  listener: WsClient,
): Promise<number> {
  const history = await http.ok<{ messages: { text: string; seq: number }[] }>(
    'GET',
    `/api/v1/rooms/${roomId}/messages?limit=${acks.length + 10}`,
  );
  assert.deepEqual(
    history.messages.map((m) => m.text),
    acks.map((a) => a.text),
  );
  const lastSeq = history.messages.at(-1)!.seq;
  assert.deepEqual(
    history.messages.map((m) => m.seq),
    range(1, lastSeq),
  );
  const live: number[] = [];
  while (live.at(-1) !== lastSeq) {
    live.push((await listener.nextEvent(isMessageIn(roomId), 60_000)).message.seq);
  }
  assert.deepEqual(live, range(1, lastSeq), 'fe2 delivered every post once, in order');
  return lastSeq;
}
