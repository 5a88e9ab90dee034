'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { validateNote, parseId, ValidationError } = require('../src/validate');

// The API's documented limits (not imported: a changed constant must fail here).
const TITLE_MAX = 200;
const BODY_MAX = 10000;

function fieldOf(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${err}`);
    return err.field;
  }
  assert.fail('expected a ValidationError');
}

test('a title and a body are accepted', () => {
  assert.deepEqual(validateNote({ title: 'groceries', body: 'milk' }), { title: 'groceries', body: 'milk' });
});

test('body is optional and defaults to empty', () => {
  assert.deepEqual(validateNote({ title: 'x' }), { title: 'x', body: '' });
});

test('title is trimmed', () => {
  assert.equal(validateNote({ title: '  spaced  ' }).title, 'spaced');
});

test('missing, empty, blank or non-string titles name the title field', () => {
  for (const input of [{}, { title: '' }, { title: '   ' }, { title: null }, { title: 42 }, { body: 'b' }]) {
    assert.equal(fieldOf(() => validateNote(input)), 'title', JSON.stringify(input));
  }
});

test('title length limit is inclusive and counts characters, not bytes', () => {
  assert.equal(validateNote({ title: 'a'.repeat(TITLE_MAX) }).title.length, TITLE_MAX);
  assert.equal(validateNote({ title: '\u{1F600}'.repeat(TITLE_MAX) }).title, '\u{1F600}'.repeat(TITLE_MAX));
  assert.equal(fieldOf(() => validateNote({ title: 'a'.repeat(TITLE_MAX + 1) })), 'title');
});

test('body must be a string of at most 10000 characters', () => {
  assert.equal(validateNote({ title: 't', body: 'b'.repeat(BODY_MAX) }).body.length, BODY_MAX);
  assert.equal(fieldOf(() => validateNote({ title: 't', body: 'b'.repeat(BODY_MAX + 1) })), 'body');
  assert.equal(fieldOf(() => validateNote({ title: 't', body: 5 })), 'body');
  assert.equal(fieldOf(() => validateNote({ title: 't', body: null })), 'body');
});

test('unknown fields are refused by name', () => {
  assert.equal(fieldOf(() => validateNote({ title: 't', owner: 'me' })), 'owner');
});

test('a body that is not an object is refused', () => {
  for (const input of [null, [], 'text', 3]) {
    assert.equal(fieldOf(() => validateNote(input)), 'body', JSON.stringify(input));
  }
});

test('the error serialises as the API answers it', () => {
  const err = new ValidationError('title', 'title is required');
  assert.deepEqual(JSON.parse(JSON.stringify(err)),
    { error: 'validation', field: 'title', message: 'title is required' });
});

test('ids are positive integers within PostgreSQL integer range', () => {
  assert.equal(parseId('1'), 1);
  assert.equal(parseId('2147483647'), 2147483647);
  for (const raw of ['0', '-1', '01', '1.5', 'abc', '1e3', '2147483648', '99999999999', '']) {
    assert.equal(parseId(raw), null, raw);
  }
});
