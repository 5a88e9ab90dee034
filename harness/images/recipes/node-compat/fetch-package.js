// Fetch one package tarball from the npm registry, check it against the integrity hash the
// registry publishes for it (sha512 SRI, pinned in the Dockerfile), and unpack it into DEST.
// Usage: node fetch-package.js NAME VERSION INTEGRITY DEST
'use strict';
const { createHash } = require('node:crypto');
const { execFileSync } = require('node:child_process');
const { mkdirSync, writeFileSync, rmSync } = require('node:fs');

async function main([name, version, integrity, dest]) {
  const url = `https://registry.npmjs.org/${name}/-/${name}-${version}.tgz`;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const body = Buffer.from(await response.arrayBuffer());
  const got = 'sha512-' + createHash('sha512').update(body).digest('base64');
  if (got !== integrity) throw new Error(`${url}: integrity ${got}, expected ${integrity}`);
  const tarball = `/tmp/${name}-${version}.tgz`;
  writeFileSync(tarball, body);
  mkdirSync(dest, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', dest, '--strip-components=1', '--no-same-owner']);
  rmSync(tarball);
  console.log(`${name}@${version} from ${url} (${body.length} bytes, integrity checked) -> ${dest}`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`fetch-package: ${err.cause ? `${err.message}: ${err.cause.message}` : err.message}`);
  process.exit(1);
});
