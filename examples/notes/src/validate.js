'use strict';

const TITLE_MAX = 200;
const BODY_MAX = 10000;
const ALLOWED_FIELDS = new Set(['title', 'body']);

class ValidationError extends Error {
  constructor(field, message) {
    super(message);
    this.name = 'ValidationError';
    this.field = field;
  }

  toJSON() {
    return { error: 'validation', field: this.field, message: this.message };
  }
}

/**
 * Checks a request body for POST /api/notes and returns the note to insert.
 * Throws a ValidationError naming the first offending field.
 */
function validateNote(input) {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ValidationError('body', 'request body must be a JSON object');
  }
  for (const key of Object.keys(input)) {
    if (!ALLOWED_FIELDS.has(key)) {
      throw new ValidationError(key, `unknown field "${key}"`);
    }
  }

  const { title, body = '' } = input;
  if (title === undefined || title === null) {
    throw new ValidationError('title', 'title is required');
  }
  if (typeof title !== 'string') {
    throw new ValidationError('title', 'title must be a string');
  }
  const trimmed = title.trim();
  if (trimmed.length === 0) {
    throw new ValidationError('title', 'title must not be empty');
  }
  if ([...trimmed].length > TITLE_MAX) {
    throw new ValidationError('title', `title must be at most ${TITLE_MAX} characters`);
  }
  if (typeof body !== 'string') {
    throw new ValidationError('body', 'body must be a string');
  }
  if ([...body].length > BODY_MAX) {
    throw new ValidationError('body', `body must be at most ${BODY_MAX} characters`);
  }
  return { title: trimmed, body };
}

/** Route ids are positive integers that fit in a PostgreSQL integer (serial). */
function parseId(raw) {
  if (!/^[1-9][0-9]{0,9}$/.test(raw)) return null;
  const id = Number(raw);
  return id <= 2147483647 ? id : null;
}

module.exports = { validateNote, parseId, ValidationError, TITLE_MAX, BODY_MAX };
