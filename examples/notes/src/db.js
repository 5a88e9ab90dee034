'use strict';

const { Pool } = require('pg');

/**
 * One pool per process. node-postgres reads DATABASE_URL when we pass it, and
 * otherwise the libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)
 * on its own, so both styles of configuration work without any parsing here.
 */
function createPool(env = process.env, logger) {
  const pool = new Pool({
    connectionString: env.DATABASE_URL || undefined,
    max: Number(env.PG_POOL_MAX || 10),
    // Fail fast while the database is away instead of queueing requests forever.
    connectionTimeoutMillis: Number(env.PG_CONNECT_TIMEOUT_MS || 2000),
    idleTimeoutMillis: 30000,
    query_timeout: Number(env.PG_QUERY_TIMEOUT_MS || 5000),
    application_name: 'notes-api',
  });

  // An idle client whose server went away emits 'error' on the pool. Without a
  // listener Node treats it as an unhandled 'error' event and the process dies.
  pool.on('error', (err) => {
    if (logger) logger.warn({ error: err.message, code: err.code }, 'idle database client failed');
  });

  return pool;
}

module.exports = { createPool };
