// bench:xmpp's own XMPP client and result math, the latter against a real Prosody when one is
// installed (Debian `prosody`), and a small run of the whole benchmark against each server
// installed (Perch always). Not part of `npm test` (CI installs no XMPP server): run it with
//   node --import tsx --test bench/xmpp/xmpp.test.ts
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  attr,
  bodyText,
  errorCondition,
  StanzaSplitter,
  XmppConnection,
  XmppError,
} from './client.js';
import {
  INSTALL,
  missingServers,
  SERVER_NAMES,
  startProsody,
  type RunningXmppServer,
} from './servers.js';
import {
  memoryPerConnection,
  messageBody,
  parseBody,
  ratio,
  ReceiverTally,
  roomLayout,
  sumCounts,
} from './tally.js';

const noProsody = missingServers(['prosody']).length > 0 ? INSTALL.prosody.hint : false;

describe('StanzaSplitter', () => {
  const stream =
    "<?xml version='1.0'?><stream:stream from='a.example' id='1' xmlns='jabber:client' version='1.0'>" +
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>" +
    "<message from='r@c/n' title='a > b'><body>1 2 3</body><x/></message>" +
    '<presence from="r@c/m"/>' +
    '</stream:stream>';

  test('splits a stream into stanzas however it is chunked', () => {
    for (const size of [1, 2, 7, 50, stream.length]) {
      const opened: string[] = [];
      const stanzas: string[] = [];
      let closed = 0;
      const s = new StanzaSplitter(
        (tag) => opened.push(tag),
        (st) => stanzas.push(st),
        () => (closed += 1),
      );
      for (let i = 0; i < stream.length; i += size) s.push(stream.slice(i, i + size));
      assert.equal(opened.length, 1, `chunk ${size}`);
      assert.equal(attr(opened[0]!, 'from'), 'a.example');
      assert.equal(stanzas.length, 3, `chunk ${size}: ${JSON.stringify(stanzas)}`);
      assert.ok(
        stanzas[0]!.startsWith('<stream:features') && stanzas[0]!.endsWith('</stream:features>'),
      );
      assert.equal(bodyText(stanzas[1]!), '1 2 3');
      assert.equal(attr(stanzas[1]!, 'title'), 'a > b');
      assert.equal(attr(stanzas[2]!, 'from'), 'r@c/m');
      assert.equal(closed, 1);
    }
  });

  test('a stream restart takes a new header', () => {
    const stanzas: string[] = [];
    let opened = 0;
    const s = new StanzaSplitter(
      () => (opened += 1),
      (st) => stanzas.push(st),
      () => undefined,
    );
    s.push("<stream:stream from='x'><success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    s.reset();
    s.push("<stream:stream from='x'><iq type='result' id='q1'/>");
    assert.equal(opened, 2);
    assert.deepEqual(
      stanzas.map((st) => st.slice(0, 8)),
      ['<success', '<iq type'],
    );
  });

  test('error conditions are read from error stanzas', () => {
    assert.equal(
      errorCondition(
        "<presence type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
      ),
      'item-not-found',
    );
  });
});

describe('result math', () => {
  test('bodies round-trip and other text is not a benchmark message', () => {
    assert.deepEqual(parseBody(messageBody(1234.5, 7, 3)), {
      sentAt: 1234.5,
      sender: 7,
      counter: 3,
    });
    assert.equal(parseBody('hello there'), undefined);
    assert.equal(parseBody('1 2 x'), undefined);
  });

  test('a repeat is a duplicate, a message never received is lost', () => {
    const t = new ReceiverTally();
    assert.equal(t.record(1, 1), true);
    assert.equal(t.record(1, 2), true);
    assert.equal(t.record(1, 2), false);
    assert.equal(t.record(2, 1), true);
    assert.equal(t.record(1, 1), false);
    assert.equal(t.distinct, 3);
    assert.equal(t.duplicated, 2);
    // Four were sent to the room: one (sender 1's third, or any) never came.
    assert.equal(t.lost(4), 1);
    assert.equal(t.lost(3), 0);
  });

  test('rooms of the given sizes, cycled; counts summed; ratios', () => {
    assert.deepEqual(roomLayout(7, [2, 3]), [
      [0, 1],
      [2, 3, 4],
      [5, 6],
    ]);
    assert.deepEqual(sumCounts([{ a: 1 }, { a: 2, b: 1 }]), { a: 3, b: 1 });
    assert.equal(ratio(4, 2), 0.5);
    assert.equal(ratio(0, 2), undefined);
    assert.equal(ratio(undefined, 2), undefined);
  });

  test('memory per connection: the marginal cost leaves out what the first sign-ins cost once', () => {
    // 100 MB spent on the first 100 connections (pools, caches), then 20 KiB per connection.
    const m = memoryPerConnection({
      baselineMb: 200,
      midMb: 300 + (900 * 20) / 1024,
      afterMb: 300 + (1900 * 20) / 1024,
      midConnections: 1000,
      connections: 2000,
    });
    assert.equal(m.kib_per_connection, 20);
    assert.equal(m.rss_growth_kib_per_connection, 70.2);
  });
});

describe('against a real Prosody', { skip: noProsody }, () => {
  test('register, sign in, join, post: every occupant counted; a refused sign-in; loss seen', async () => {
    const server: RunningXmppServer = await startProsody(50);
    const conns: XmppConnection[] = [];
    try {
      const room = server.roomJid(0);
      const tallies = [new ReceiverTally(), new ReceiverTally(), new ReceiverTally()];
      const arrivals: Promise<void>[] = [];
      for (let i = 0; i < 3; i++) {
        const c = await XmppConnection.open({
          host: server.host,
          port: server.port,
          domain: server.domain,
          username: `t${i}`,
          password: 'pw',
          register: true,
          stepTimeoutMs: 20_000,
        });
        assert.equal(c.jid, `t${i}@${server.domain}/bench`);
        conns.push(c);
        const joined = await c.join(room, `t${i}`);
        assert.equal(joined.created, i === 0, 'the first join creates the room');
      }
      // Each occupant waits for the two messages (t1's reflected to it, and t2's).
      conns.forEach((c, i) => {
        let seen = 0;
        arrivals.push(
          new Promise<void>((resolve) => {
            c.onStanza = (s) => {
              const p = parseBody(bodyText(s) ?? '');
              if (!p) return;
              tallies[i]!.record(p.sender, p.counter);
              if (++seen === 2) resolve();
            };
          }),
        );
      });
      conns[1]!.groupchat(room, messageBody(Date.now(), 1, 1));
      conns[2]!.groupchat(room, messageBody(Date.now(), 2, 1));
      await Promise.all(arrivals);
      for (const t of tallies) {
        assert.equal(t.lost(2), 0);
        assert.equal(t.duplicated, 0);
      }
      // t0 leaves; a third message reaches the others only: t0's tally counts it lost.
      conns[0]!.end();
      const third = new Promise<void>((resolve) => {
        const c = conns[2]!;
        const prev = c.onStanza;
        c.onStanza = (s) => {
          prev(s);
          if (parseBody(bodyText(s) ?? '')?.counter === 2) resolve();
        };
      });
      conns[1]!.groupchat(room, messageBody(Date.now(), 1, 2));
      await third;
      assert.equal(tallies[0]!.lost(3), 1);
      assert.equal(tallies[2]!.lost(3), 0);

      await assert.rejects(
        XmppConnection.open({
          host: server.host,
          port: server.port,
          domain: server.domain,
          username: 't1',
          password: 'wrong',
          stepTimeoutMs: 20_000,
        }),
        (err: unknown) => err instanceof XmppError && err.condition === 'not-authorized',
      );
    } finally {
      for (const c of conns) c.end();
      const pids = server.pids();
      await server.stop();
      for (const pid of pids) assert.equal(fs.existsSync(`/proc/${pid}`), false, `pid ${pid} gone`);
      assert.equal(fs.existsSync(server.dir), false, 'the server folder is removed');
    }
  });
});

describe('the whole benchmark, on a small run', () => {
  for (const name of SERVER_NAMES) {
    test(
      `${name}: nothing lost, every message delivered to every occupant`,
      { skip: missingServers([name]).length > 0 ? INSTALL[name].hint : false },
      async () => {
        const out = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-xmppbench-test-'));
        try {
          const run = path.join(path.dirname(fileURLToPath(import.meta.url)), 'run.ts');
          const stdout = await new Promise<string>((resolve, reject) =>
            execFile(
              process.execPath,
              [
                '--import',
                'tsx',
                run,
                '--servers',
                name,
                '--users',
                '12',
                '--room-sizes',
                '4,8',
                '--rate',
                '10',
                '--duration',
                '2',
                '--results-dir',
                out,
              ],
              { timeout: 120_000 },
              (err, so, se) => (err ? reject(new Error(`${String(err)}\n${se}`)) : resolve(so)),
            ),
          );
          const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
            rooms: number;
            servers: Record<
              string,
              Record<
                | 'connections'
                | 'posted'
                | 'received'
                | 'deliveries'
                | 'lost'
                | 'duplicated'
                | 'errors'
                | 'rss_mb'
                | 'cpu_cores',
                number
              >
            >;
          };
          const p = result.servers[name]!;
          assert.equal(result.rooms, 2);
          assert.equal(p.connections, 12);
          assert.equal(p.posted, 20);
          assert.equal(p.lost, 0);
          assert.equal(p.duplicated, 0);
          assert.equal(p.errors, 0);
          // Each message reaches every occupant of its room (its sender included): between 4 and 8 each.
          assert.ok(p.received >= 4 * p.posted && p.received <= 8 * p.posted, String(p.received));
          assert.equal(p.deliveries + p.posted, p.received);
          assert.ok(p.rss_mb > 0 && p.cpu_cores >= 0);
          const files = fs.readdirSync(out);
          assert.ok(
            files.some((f) => /^xmpp-.*\.json$/.test(f)) && files.some((f) => f.endsWith('.svg')),
          );
        } finally {
          fs.rmSync(out, { recursive: true, force: true });
        }
      },
    );
  }
});
