// The CacheService from Node.js: @grpc/grpc-js with the protos loaded at run time
// (@grpc/proto-loader), as a Node application would use it. Shared by the tests and
// the benchmark row (bench.mjs).
import fs from 'node:fs';
import path from 'node:path';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/** The include directories: protos/ and googleapis (MARKETCACHE_PROTO_PATH, ':'-separated). */
export function protoDirs() {
  const dirs = (process.env.MARKETCACHE_PROTO_PATH ?? '').split(path.delimiter).filter(Boolean);
  if (dirs.length === 0) throw new Error('MARKETCACHE_PROTO_PATH is not set');
  return dirs;
}

/** The cache's address (MARKETCACHE_CACHE_ADDR, host:port). */
export function cacheAddress() {
  const address = process.env.MARKETCACHE_CACHE_ADDR;
  if (!address) throw new Error('MARKETCACHE_CACHE_ADDR is not set');
  return address;
}

const LOADER_OPTIONS = { longs: Number, enums: String, defaults: true, oneofs: true };

/** The marketcache.v1 package, loaded once. */
let cached;
function marketcache() {
  cached ??= grpc.loadPackageDefinition(
    protoLoader.loadSync('marketcache/v1/cache.proto', { ...LOADER_OPTIONS, includeDirs: protoDirs() }),
  ).marketcache.v1;
  return cached;
}

/**
 * A CacheService client on a channel of its own: `separate` clients never share a
 * connection (grpc-js pools subchannels between clients unless told not to).
 */
export function cacheClient(address = cacheAddress()) {
  return new (marketcache().CacheService)(address, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  });
}

/** `client.method(request)` as a promise, with a deadline. */
export function call(client, method, request, seconds = 30) {
  const deadline = new Date(Date.now() + seconds * 1000);
  return new Promise((resolve, reject) => {
    client[method](request, { deadline }, (error, reply) => (error ? reject(error) : resolve(reply)));
  });
}

/** A JSON value as a google.protobuf.Value object. */
export function toValue(json) {
  if (json === null) return { nullValue: 'NULL_VALUE' };
  if (Array.isArray(json)) return { listValue: { values: json.map(toValue) } };
  switch (typeof json) {
    case 'number':
      return { numberValue: json };
    case 'string':
      return { stringValue: json };
    case 'boolean':
      return { boolValue: json };
    default:
      return {
        structValue: { fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, toValue(v)])) },
      };
  }
}

/** A google.protobuf.Value object (oneof `kind`) as JSON. */
export function fromValue(value) {
  switch (value.kind) {
    case 'nullValue':
      return null;
    case 'listValue':
      return value.listValue.values.map(fromValue);
    case 'structValue':
      return Object.fromEntries(Object.entries(value.structValue.fields).map(([k, v]) => [k, fromValue(v)]));
    default:
      return value[value.kind];
  }
}

/** protobufjs types for google.rpc.Status and its details, from the same include path. */
let rpcRoot;
function rpcTypes() {
  if (!rpcRoot) {
    rpcRoot = new protobuf.Root();
    rpcRoot.resolvePath = (_origin, target) =>
      protoDirs()
        .map((dir) => path.join(dir, target))
        .find((candidate) => fs.existsSync(candidate)) ?? target;
    rpcRoot.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
  }
  return rpcRoot;
}

/**
 * The google.rpc.Status a failed call carries in `grpc-status-details-bin`, its
 * details unpacked: `{code, message, details: [{type, ...fields}]}`, or null.
 */
export function statusDetails(error) {
  const [raw] = error.metadata?.get('grpc-status-details-bin') ?? [];
  if (!raw) return null;
  const root = rpcTypes();
  const status = root.lookupType('google.rpc.Status').decode(raw);
  const details = status.details.map((any) => {
    const type = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    return { type, ...root.lookupType(type).toObject(root.lookupType(type).decode(any.value)) };
  });
  return { code: status.code, message: status.message, details };
}
