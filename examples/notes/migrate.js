'use strict';

// Schema migrations and seed data, run as a one-shot command before the API
// starts (`npm run migrate`). Safe to run any number of times.

const { Client } = require('pg');

const MIGRATIONS = [
  `CREATE TABLE IF NOT EXISTS notes (
     id         serial PRIMARY KEY,
     title      text NOT NULL,
     body       text NOT NULL DEFAULT '',
     created_at timestamptz DEFAULT now()
   )`,
];

const SEED = [
  { title: 'welcome', body: 'Welcome to the notes API.' },
  { title: 'second', body: 'A second note, so lists have something to order.' },
];

// Several replicas (or a re-run Job) may migrate at once: one at a time.
const LOCK_ID = 727274;

async function migrate(client, log = console.log) {
  await client.query('SELECT pg_advisory_lock($1)', [LOCK_ID]);
  try {
    await client.query('BEGIN');
    for (const statement of MIGRATIONS) await client.query(statement);
    const { rows } = await client.query('SELECT count(*)::int AS n FROM notes');
    if (rows[0].n === 0) {
      for (const note of SEED) {
        await client.query('INSERT INTO notes (title, body) VALUES ($1, $2)', [note.title, note.body]);
      }
      log(`seeded ${SEED.length} notes`);
    } else {
      log(`notes already has ${rows[0].n} rows, not seeding`);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_ID]).catch(() => {});
  }
}

// A database that is still starting (or whose name does not resolve yet) is
// worth waiting for; anything else (bad password, missing database) is not.
const RETRYABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', '57P03']);

async function connect(waitSeconds) {
  const deadline = Date.now() + waitSeconds * 1000;
  for (;;) {
    const client = new Client({ connectionString: process.env.DATABASE_URL || undefined });
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => {});
      if (!RETRYABLE.has(err.code) || Date.now() >= deadline) throw err;
      console.log(`database not reachable yet (${err.code}), retrying`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

async function main() {
  const client = await connect(Number(process.env.MIGRATE_WAIT_SECONDS || 30));
  try {
    await migrate(client);
    console.log('migrations complete');
  } finally {
    await client.end();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`migration failed: ${err.message}`);
    process.exit(1);
  });
}

module.exports = { migrate, MIGRATIONS, SEED };
