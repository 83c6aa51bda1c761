// Durable Set from Node.js at N in flight on one channel, for bench/node_client.py:
// prints {"ops_per_second": [...]} (one figure per repetition) on stdout.
// MARKETCACHE_BENCH_{CONCURRENCY,SECONDS,WARMUP_SECONDS,REPS}, plus client.mjs's variables.
import { cacheClient, call, toValue } from './client.mjs';

const concurrency = Number(process.env.MARKETCACHE_BENCH_CONCURRENCY ?? 64);
const seconds = Number(process.env.MARKETCACHE_BENCH_SECONDS ?? 5);
const warmup = Number(process.env.MARKETCACHE_BENCH_WARMUP_SECONDS ?? 1);
const reps = Number(process.env.MARKETCACHE_BENCH_REPS ?? 1);
// As bench/kv.py's keyspace: 8 prefixes, a 200-character value, a one-hour TTL.
const PREFIXES = 8;
const value = toValue('v'.repeat(200));

// `concurrency` workers each keep one Set in flight until the deadline; the clock
// stops when the last returns (as bench/drivers.py's throughput).
async function throughput(client, forSeconds) {
  const start = performance.now();
  const deadline = start + forSeconds * 1000;
  let done = 0;
  const worker = async (w) => {
    for (let i = w; performance.now() < deadline; i += concurrency) {
      await call(client, 'Set', { key: `bench${i % PREFIXES}:k${i % 100000}`, value, ttlSeconds: 3600 }, 60);
      done += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return done / ((performance.now() - start) / 1000);
}

const client = cacheClient();
try {
  await throughput(client, warmup);
  const figures = [];
  for (let r = 0; r < reps; r += 1) figures.push(await throughput(client, seconds));
  process.stdout.write(`${JSON.stringify({ ops_per_second: figures })}\n`);
} finally {
  client.close();
}
