'use strict';

const pino = require('pino');

function createLogger(env = process.env) {
  return pino({
    level: env.LOG_LEVEL || 'info',
    base: { service: 'notes-api' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, pino.destination({ dest: 1, sync: true })); // synchronous: no lines lost or reordered on exit
}

/** One JSON line per request once the response is sent: method, path (with the query string), status. */
function requestLogger(logger) {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info({
        method: req.method,
        path: req.originalUrl,
        status: res.statusCode,
        duration_ms: Math.round(ms * 10) / 10,
      }, 'request');
    });
    next();
  };
}

module.exports = { createLogger, requestLogger };
