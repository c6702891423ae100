'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const qk = require('..');

const PKG = path.join(__dirname, '..');
const CONSTANTS = path.join(PKG, '..', '..', 'include', 'quorumkit-constants.json');

test('the status table matches include/quorumkit-constants.json and qk_status_str()', { skip: !fs.existsSync(CONSTANTS) }, () => {
  const json = JSON.parse(fs.readFileSync(CONSTANTS, 'utf8'));
  assert.strictEqual(json.abi_version, qk.ABI_VERSION);
  const fromJson = Object.fromEntries(json.status.map((s) => [s.name.replace(/^QK_(ERR_)?/, ''), s.code]));
  assert.deepStrictEqual(qk.codes, fromJson);
  for (const s of json.status) assert.strictEqual(qk.statusString(s.code), s.message);
});

test('library errors are QuorumkitError subclasses with status, code and the call\'s message', () => {
  const ring = new qk.HashRing();
  ring.addNode('a');
  const e = captured(() => ring.addNode('a'));
  assert.ok(e instanceof qk.AlreadyExistsError && e instanceof qk.QuorumkitError && e instanceof Error);
  assert.strictEqual(e.name, 'AlreadyExistsError');
  assert.strictEqual(e.status, qk.codes.ALREADY_EXISTS);
  assert.strictEqual(e.code, 'ALREADY_EXISTS');
  assert.match(e.message, /"a"/);
  // Every code but OK has its class, named after the code.
  for (const [code, status] of Object.entries(qk.codes)) {
    if (status === 0) continue;
    const cls = code.toLowerCase().replace(/(^|_)([a-z0-9])/g, (_, __, c) => c.toUpperCase()) + 'Error';
    assert.strictEqual(typeof qk[cls], 'function', cls);
    const err = new qk[cls](status);
    assert.strictEqual(err.code, code);
    assert.strictEqual(err.message, qk.statusString(status)); // no detail: the status text
  }
  ring.close();
});

test('each error carries its own call\'s message, not a previous one', () => {
  const ring = new qk.HashRing();
  assert.throws(() => ring.removeNode('first'), (e) => e.code === 'NOT_FOUND' && /"first"/.test(e.message));
  ring.addNode('x');
  assert.throws(() => ring.addNode('x'), (e) => e.code === 'ALREADY_EXISTS' && !/first/.test(e.message));
  assert.throws(() => ring.getNodes('k', 2), (e) => e.code === 'INVALID_ARG');
  ring.close();
});

test('a closed handle throws NULL_ARG instead of passing a freed pointer; close() is idempotent', () => {
  const ring = new qk.HashRing();
  ring.close();
  ring.close();
  assert.ok(ring.closed);
  assert.throws(() => ring.addNode('a'), (e) => e.code === 'NULL_ARG' && /closed/.test(e.message));
});

function load(lib) {
  return spawnSync(process.execPath, ['-e', 'require(".")'], {
    cwd: PKG, env: { ...process.env, QUORUMKIT_LIB: lib }, encoding: 'utf8',
  });
}

test('loading a missing library fails with a clear error', () => {
  const r = load('/nonexistent/libquorumkit.so');
  assert.notStrictEqual(r.status, 0);
  assert.match(r.stderr, /quorumkit: cannot load the C library \/nonexistent\/libquorumkit\.so/);
});

test('loading a library that is not quorumkit fails with a clear error', () => {
  const libc = ['/lib/x86_64-linux-gnu/libc.so.6', '/lib/aarch64-linux-gnu/libc.so.6', '/lib64/libc.so.6', '/usr/lib/libc.so.6']
    .find((p) => fs.existsSync(p));
  if (!libc) return;
  const r = load(libc);
  assert.notStrictEqual(r.status, 0);
  assert.match(r.stderr, /lacks `uint32 qk_abi_version\(\)`/);
});

function captured(f) {
  try { f(); } catch (e) { return e; }
  throw new Error('did not throw');
}
