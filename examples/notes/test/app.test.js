'use strict';

// The HTTP layer against a stand-in pool: status codes and bodies without a database.

const test = require('node:test');
const assert = require('node:assert/strict');
const pino = require('pino');
const { createApp } = require('../src/app');

function fakePool(handler) {
  const calls = [];
  return {
    calls,
    query: async (text, params) => {
      calls.push({ text, params });
      return handler(text, params);
    },
  };
}

async function withServer(app, fn) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    await fn(base);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

const silent = pino({ level: 'silent' });

test('validation errors are 422 naming the field, and nothing is written', async () => {
  const pool = fakePool(() => ({ rows: [] }));
  await withServer(createApp({ pool, logger: silent }), async (base) => {
    const res = await fetch(`${base}/api/notes`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ body: 'no title' }),
    });
    assert.equal(res.status, 422);
    const body = await res.json();
    assert.equal(body.error, 'validation');
    assert.equal(body.field, 'title');
    assert.equal(pool.calls.length, 0);
  });
});

test('malformed JSON is a 400 with a JSON body', async () => {
  const pool = fakePool(() => ({ rows: [] }));
  await withServer(createApp({ pool, logger: silent }), async (base) => {
    const res = await fetch(`${base}/api/notes`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json',
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: 'invalid json' });
  });
});

test('non-numeric and unknown ids are JSON 404s', async () => {
  const pool = fakePool(() => ({ rows: [] }));
  await withServer(createApp({ pool, logger: silent }), async (base) => {
    for (const path of ['/api/notes/abc', '/api/notes/999999', '/nowhere']) {
      const res = await fetch(base + path);
      assert.equal(res.status, 404, path);
      assert.deepEqual(await res.json(), { error: 'not found' });
    }
    assert.equal(pool.calls.length, 1, 'only the numeric id reaches the database');
  });
});

test('readyz is 503 while the database fails and healthz stays 200', async () => {
  let up = false;
  const pool = fakePool(() => {
    if (!up) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    return { rows: [{ '?column?': 1 }] };
  });
  await withServer(createApp({ pool, logger: silent }), async (base) => {
    assert.equal((await fetch(`${base}/readyz`)).status, 503);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const list = await fetch(`${base}/api/notes`);
    assert.equal(list.status, 503);
    assert.deepEqual(await list.json(), { error: 'database unavailable' });
    up = true;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  });
});

test('version comes from the configured value', async () => {
  const pool = fakePool(() => ({ rows: [] }));
  await withServer(createApp({ pool, logger: silent, version: 'r42' }), async (base) => {
    assert.deepEqual(await (await fetch(`${base}/version`)).json(), { version: 'r42' });
  });
});
