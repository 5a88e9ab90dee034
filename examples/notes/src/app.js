'use strict';

const express = require('express');
const { validateNote, parseId, ValidationError } = require('./validate');
const { requestLogger } = require('./logger');

// Errors that mean "the database is not reachable right now" rather than a bug.
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT',
  'EHOSTUNREACH', '57P01', '57P02', '57P03']);

function databaseUnavailable(err) {
  return UNAVAILABLE_CODES.has(err.code)
    || /timeout exceeded when trying to connect|Connection terminated/i.test(err.message || '');
}

// Express 4 does not catch rejected promises from handlers.
const wrap = (handler) => (req, res, next) => Promise.resolve(handler(req, res, next)).catch(next);

function createApp({ pool, logger, version = 'dev' }) {
  const app = express();
  app.disable('x-powered-by');
  app.locals.shuttingDown = false;

  app.use(requestLogger(logger));
  app.use(express.json({ limit: '100kb' }));
  app.use((req, res, next) => {
    // While draining, tell keep-alive clients to go elsewhere for their next request.
    if (app.locals.shuttingDown) res.set('Connection', 'close');
    next();
  });

  app.get('/healthz', (req, res) => res.json({ status: 'ok' }));

  app.get('/readyz', wrap(async (req, res) => {
    if (app.locals.shuttingDown) return res.status(503).json({ status: 'shutting down' });
    try {
      await pool.query('SELECT 1');
      return res.json({ status: 'ready' });
    } catch (err) {
      return res.status(503).json({ status: 'unavailable', error: err.message });
    }
  }));

  app.get('/version', (req, res) => res.json({ version }));

  app.get('/api/notes', wrap(async (req, res) => {
    const { rows } = await pool.query('SELECT id, title, body, created_at FROM notes ORDER BY id');
    res.json(rows);
  }));

  app.get('/api/notes/:id', wrap(async (req, res) => {
    const id = parseId(req.params.id);
    if (id === null) return res.status(404).json({ error: 'not found' });
    const { rows } = await pool.query('SELECT id, title, body, created_at FROM notes WHERE id = $1', [id]);
    if (rows.length === 0) return res.status(404).json({ error: 'not found' });
    return res.json(rows[0]);
  }));

  app.post('/api/notes', wrap(async (req, res) => {
    const note = validateNote(req.body);
    const { rows } = await pool.query(
      'INSERT INTO notes (title, body) VALUES ($1, $2) RETURNING id, title, body, created_at',
      [note.title, note.body],
    );
    res.status(201).location(`/api/notes/${rows[0].id}`).json(rows[0]);
  }));

  app.use((req, res) => res.status(404).json({ error: 'not found' }));

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    if (err instanceof ValidationError) return res.status(422).json(err);
    if (err.type === 'entity.parse.failed') return res.status(400).json({ error: 'invalid json' });
    if (err.status >= 400 && err.status < 500) return res.status(err.status).json({ error: err.message });
    if (databaseUnavailable(err)) {
      logger.warn({ error: err.message, code: err.code }, 'database unavailable');
      return res.status(503).json({ error: 'database unavailable' });
    }
    logger.error({ err }, 'unhandled error');
    return res.status(500).json({ error: 'internal error' });
  });

  return app;
}

module.exports = { createApp };
