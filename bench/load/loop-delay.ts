/**
 * Preloaded into a benchmarked server (`node --import <this file>`): measures the main thread's
 * event-loop delay (perf_hooks.monitorEventLoopDelay, sampled every 2 ms). On SIGUSR2 it writes
 * what it measured since the previous SIGUSR2 (or since start) as JSON to
 * `<PERCH_BENCH_LOOP_DELAY_FILE>-<pid>.json`, then starts again: the benchmark signals before and after its
 * posting phase. Benchmarks only; the server itself never loads it.
 */
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const base = process.env.PERCH_BENCH_LOOP_DELAY_FILE;
if (base) {
  const file = `${base}-${process.pid}.json`;
  const h = monitorEventLoopDelay({ resolution: 2 });
  h.enable();
  process.on('SIGUSR2', () => {
    const ms = (ns: number) => +(ns / 1e6).toFixed(2);
    const out = {
      p50_ms: ms(h.percentile(50)),
      p99_ms: ms(h.percentile(99)),
      max_ms: ms(h.max),
      mean_ms: ms(h.mean),
    };
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(out));
    fs.renameSync(`${file}.tmp`, file);
    h.reset();
  });
}
