// Each test file is a client machine of its own: its requests leave from a
// loopback source address of its own (127.64.0.0/10, derived from the
// file's name), so the per-address rate limits count each file apart, as
// Cloudflare would count two clients on two networks.
//
// This is not spoofing. No request carries a CF-Connecting-IP (or any
// other) header naming an address: the worker reads the socket's peer
// address, which `wrangler dev` (Miniflare) puts into CF-Connecting-IP
// exactly as Cloudflare's edge does in production. A test that sent the
// header itself would be trusting a client-written value; this one only
// binds the socket (Linux routes all of 127.0.0.0/8 to loopback).
//
// Loaded with `node --import` by the e2e and attack runners; the test
// runner passes it to the process of every file. Requests to `localhost`
// (which may resolve to ::1) keep the default source.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { isIPv4 } from 'node:net';
import { Agent, buildConnector, setGlobalDispatcher } from 'undici';

/** The loopback address `name` (a test file's base name) sends from. */
export function sourceAddressFor(name) {
  const [a, b, c] = createHash('sha256').update(name).digest();
  return `127.${64 + (a % 64)}.${b}.${1 + (c % 254)}`;
}

const file = process.argv[1] ?? '';

/** This process's source address, or undefined outside a test file. */
export const SOURCE_ADDRESS = file.endsWith('.test.mjs') ? sourceAddressFor(path.basename(file)) : undefined;

/** A dispatcher sending from this file's address (a fresh pool each call). */
export function sourceDispatcher() {
  const connect = buildConnector({});
  return new Agent({
    connect(opts, callback) {
      const localAddress = SOURCE_ADDRESS && isIPv4(opts.hostname) && opts.hostname.startsWith('127.') ? SOURCE_ADDRESS : undefined;
      return connect({ ...opts, localAddress }, callback);
    },
  });
}

if (SOURCE_ADDRESS) setGlobalDispatcher(sourceDispatcher());
