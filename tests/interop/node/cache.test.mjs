// The CacheService from Node.js: each RPC a Node application would use, against a real
// cache (started by tests/interop/test_node.py, which runs `node --test`).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';

import * as grpc from '@grpc/grpc-js';

import { cacheClient, call, fromValue, statusDetails, toValue } from './client.mjs';

// Keys of this run only, so a rerun against the same cache starts clean.
const run = randomUUID().slice(0, 8);
let client;

before(() => {
  client = cacheClient();
});

after(() => {
  client.close();
});

test('Set then Get returns the JSON value', async () => {
  const key = `node:${run}:set`;
  const value = { symbol: 'AAPL', price: 189.5, tags: ['tech', null, true] };
  const stored = await call(client, 'Set', { key, value: toValue(value), ttlSeconds: 60 });
  assert.equal(stored.key, key);
  assert.equal(stored.ttlSeconds, 60);
  assert.equal(stored.position.prefix, 'node');
  const got = await call(client, 'Get', { key });
  assert.equal(got.found, true);
  assert.deepEqual(fromValue(got.value), value);
  const miss = await call(client, 'Get', { key: `node:${run}:absent` });
  assert.equal(miss.found, false);
});

test('MSet then MGet, in request order with misses marked', async () => {
  const items = [1, 2, 3].map((n) => ({ key: `node:${run}:m${n}`, value: toValue({ n }), ttlSeconds: 60 }));
  const written = await call(client, 'MSet', { items });
  assert.equal(written.written, 3);
  const keys = [`node:${run}:m3`, `node:${run}:nope`, `node:${run}:m1`];
  const { results } = await call(client, 'MGet', { keys });
  assert.deepEqual(
    results.map((r) => [r.key, r.found, r.found ? fromValue(r.value) : undefined]),
    [
      [keys[0], true, { n: 3 }],
      [keys[1], false, undefined],
      [keys[2], true, { n: 1 }],
    ],
  );
});

test('WriteBatch answers each item: a bad one fails alone', async () => {
  const good = `node:${run}:batch`;
  const ops = [
    { key: good, set: { value: toValue('x'), ttlSeconds: 60 } },
    { key: 'no-prefix', set: { value: toValue(1) } },
    { key: `node:${run}:m2`, delete: {} },
  ];
  const { results } = await call(client, 'WriteBatch', { ops });
  assert.deepEqual(
    results.map((r) => r.code),
    [grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.OK],
  );
  assert.match(results[1].message, /prefix/);
  assert.equal(results[2].deleted, true);
  assert.equal(fromValue((await call(client, 'Get', { key: good })).value), 'x');
  assert.equal((await call(client, 'Get', { key: `node:${run}:m2` })).found, false);
});

test("Watch sees another client's write", async () => {
  const prefix = `nodewatch${run}`;
  const key = `${prefix}:AAPL`;
  const writer = cacheClient();
  const stream = client.Watch({ prefixes: [prefix] }, { deadline: new Date(Date.now() + 60_000) });
  try {
    const invalidated = new Promise((resolve, reject) => {
      let started = false;
      stream.on('data', (event) => {
        if (event.event === 'started' && !started) {
          started = true;
          // Written only once the stream stands: the invalidation must follow.
          call(writer, 'Set', { key, value: toValue(1), ttlSeconds: 60 }).catch(reject);
        } else if (event.event === 'invalidation' && event.invalidation.keys.includes(key)) {
          resolve(event);
        } else if (event.event === 'reset') {
          reject(new Error(`watch reset: ${event.reset.reason}`));
        }
      });
      stream.on('error', reject);
    });
    const event = await invalidated;
    assert.equal(event.prefix, prefix);
    assert.ok(event.position.sequence > 0);
  } finally {
    stream.cancel();
    writer.close();
  }
});

test('a bad key fails INVALID_ARGUMENT with google.rpc.Status details', async () => {
  const error = await call(client, 'Set', { key: 'AAPL', value: toValue(1) }).then(
    () => assert.fail('a key without a prefix was accepted'),
    (e) => e,
  );
  assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
  const status = statusDetails(error);
  assert.ok(status, 'no grpc-status-details-bin trailer');
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(status.message, error.details);
  const [badRequest] = status.details;
  assert.equal(badRequest.type, 'google.rpc.BadRequest');
  assert.equal(badRequest.fieldViolations[0].field, 'key');
  assert.match(badRequest.fieldViolations[0].description, /prefix/);
});

test('5,000 concurrent calls on one channel all succeed', async () => {
  const key = `node:${run}:hot`;
  await call(client, 'Set', { key, value: toValue({ hot: true }), ttlSeconds: 300 });
  const replies = await Promise.allSettled(
    Array.from({ length: 5000 }, () => call(client, 'Get', { key }, 120)),
  );
  const failed = replies.filter((r) => r.status === 'rejected');
  assert.equal(failed.length, 0, `${failed.length} failed, the first: ${failed[0]?.reason}`);
  assert.ok(replies.every((r) => r.value.found && r.value.value.structValue.fields.hot.boolValue));
});
