#!/bin/sh
# As the official node images' entrypoint: `docker run IMAGE server.js` or `IMAGE --version` runs node.
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
    set -- node "$@"
fi
exec "$@"
