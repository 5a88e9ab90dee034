'use strict';

const { createApp } = require('./src/app');
const { createPool } = require('./src/db');
const { createLogger } = require('./src/logger');

const logger = createLogger();
const pool = createPool(process.env, logger);
const app = createApp({ pool, logger, version: process.env.APP_VERSION || 'dev' });

const port = Number(process.env.PORT || 3000);
const shutdownTimeoutMs = Number(process.env.SHUTDOWN_TIMEOUT_MS || 10000);

const server = app.listen(port, () => {
  logger.info({ port, version: process.env.APP_VERSION || 'dev' }, 'listening');
});
server.on('error', (err) => {
  logger.fatal({ err }, 'cannot listen');
  process.exit(1);
});

let stopping = false;

function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  app.locals.shuttingDown = true;
  logger.info({ signal }, 'shutting down: finishing in-flight requests');

  const force = setTimeout(() => {
    logger.warn({ timeout_ms: shutdownTimeoutMs }, 'in-flight requests did not finish in time, closing them');
    server.closeAllConnections();
  }, shutdownTimeoutMs);
  force.unref();

  // close() stops accepting and resolves once every open connection is gone;
  // idle keep-alive connections are closed right away (Node 19+).
  server.close(async () => {
    clearTimeout(force);
    try {
      await pool.end();
      logger.info('stopped');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'error while closing the database pool');
      process.exit(1);
    }
  });
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
