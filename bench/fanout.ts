/**
 * The cost of fanning one room message out to many WebSocket connections, in the server process
 * alone: `npm run bench:fanout -- [--clients 1000] [--messages 200] [--rounds 6] [--bytes 300]`.
 *
 * A child process holds `--clients` loopback connections and counts what arrives; this process
 * sends `--messages` messages to all of them per round, alternating the two ways the hub could
 * write (`send`: ws.send of a Buffer encoded once, what the hub did before; `frame`: the frame
 * built once by OutgoingFrame and written as is), and measures the CPU time (user + system) and
 * wall time of the send loops only. CPU time is what a loaded, shared machine distorts least.
 * The last line of standard output is one JSON object with the per-recipient costs and the
 * frame/send ratios, round by round and as medians.
 */
import { fork } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';
import { OutgoingFrame, canWriteFramed, sendFrame } from '../src/realtime/frame.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    clients: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '6' },
    bytes: { type: 'string', default: '300' },
    port: { type: 'string' },
  },
});
const clients = Number(values.clients);
const log = (line: string) => process.stderr.write(`${line}\n`);

if (positionals[0] === 'clients') {
  // The receiving side: opens the connections, reports the count of frames received on request.
  const sockets: WebSocket[] = [];
  let received = 0;
  for (let i = 0; i < clients; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${values.port}`);
    ws.on('message', () => received++);
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
  }
  process.send!({ open: clients });
  process.on('message', () => process.send!({ received }));
  process.on('disconnect', () => {
    for (const ws of sockets) ws.terminate();
  });
} else {
  const messages = Number(values.messages);
  const rounds = Number(values.rounds);
  const bytes = Number(values.bytes);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const sockets: WebSocket[] = [];
  wss.on('connection', (ws) => sockets.push(ws));
  const child = fork(fileURLToPath(import.meta.url), [
    'clients',
    '--clients',
    String(clients),
    '--port',
    String((wss.address() as AddressInfo).port),
  ]);
  const ask = () =>
    new Promise<{ open?: number; received?: number }>((resolve) => {
      child.once('message', (m) => resolve(m as { open?: number; received?: number }));
    });
  const opened = ask();
  await opened;
  while (sockets.length < clients) await new Promise((r) => setTimeout(r, 10));
  if (!canWriteFramed(sockets[0] as unknown as Parameters<typeof canWriteFramed>[0]))
    throw new Error('the ws internals differ: frames would fall back to ws.send');
  log(`${clients} connections open; ${rounds} rounds of ${messages} messages of ${bytes} bytes`);

  let expected = 0;
  const drained = async () => {
    for (;;) {
      child.send('count');
      const { received } = await ask();
      if (received! >= expected) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const json = (i: number) =>
    JSON.stringify({ type: 'message', roomId: 1, message: { seq: i, text: 'x'.repeat(bytes) } });

  const modes = {
    send(i: number) {
      const raw = Buffer.from(json(i));
      for (const ws of sockets) ws.send(raw, { binary: false });
    },
    frame(i: number) {
      const frame = new OutgoingFrame(json(i));
      for (const ws of sockets) sendFrame(ws, frame);
    },
  };
  const perRecipientNs: Record<keyof typeof modes, number[]> = { send: [], frame: [] };
  const wallPerMessageUs: Record<keyof typeof modes, number[]> = { send: [], frame: [] };
  // One unmeasured round of each to warm up, then alternating A B, B A, ...
  for (let round = -1; round < rounds; round++) {
    const order: (keyof typeof modes)[] = round % 2 ? ['send', 'frame'] : ['frame', 'send'];
    for (const mode of order) {
      const cpu = process.cpuUsage();
      const t = process.hrtime.bigint();
      for (let i = 0; i < messages; i++) modes[mode](i);
      const wallNs = Number(process.hrtime.bigint() - t);
      const used = process.cpuUsage(cpu);
      expected += messages * clients;
      await drained();
      if (round < 0) continue;
      perRecipientNs[mode].push(((used.user + used.system) * 1000) / (messages * clients));
      wallPerMessageUs[mode].push(wallNs / 1000 / messages);
    }
  }
  child.disconnect();
  child.kill();
  wss.close();

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ratios = perRecipientNs.frame.map((f, i) => +(f / perRecipientNs.send[i]!).toFixed(3));
  const summary = {
    bench: 'fanout',
    clients,
    messages,
    rounds,
    bytes,
    cpu_ns_per_recipient: {
      send: +median(perRecipientNs.send).toFixed(0),
      frame: +median(perRecipientNs.frame).toFixed(0),
    },
    wall_us_per_message: {
      send: +median(wallPerMessageUs.send).toFixed(0),
      frame: +median(wallPerMessageUs.frame).toFixed(0),
    },
    cpu_ratio_frame_to_send: { median: median(ratios), rounds: ratios },
  };
  log(
    `CPU per recipient: send ${summary.cpu_ns_per_recipient.send} ns, frame ${summary.cpu_ns_per_recipient.frame} ns (median ratio ${summary.cpu_ratio_frame_to_send.median}); send loop per message: ${summary.wall_us_per_message.send} vs ${summary.wall_us_per_message.frame} µs`,
  );
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
