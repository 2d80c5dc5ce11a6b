#!/bin/sh
# Container entrypoint: takes the coordinator's token from REVENANT_TOKEN or from the file named by
# REVENANT_TOKEN_FILE (a compose or Kubernetes secret), and refuses to start without one, since
# the coordinator listens on 0.0.0.0 in a container and every route but /healthz needs it.
set -eu
if [ -n "${REVENANT_TOKEN_FILE:-}" ]; then
  if [ ! -r "$REVENANT_TOKEN_FILE" ]; then
    echo "revenant: REVENANT_TOKEN_FILE=$REVENANT_TOKEN_FILE is not a readable file" >&2
    exit 2
  fi
  REVENANT_TOKEN="$(tr -d '\r\n' < "$REVENANT_TOKEN_FILE")"
  export REVENANT_TOKEN
fi
if [ -z "${REVENANT_TOKEN:-}" ]; then
  echo "revenant: set REVENANT_TOKEN (or REVENANT_TOKEN_FILE); clients then send Authorization: Bearer <token>" >&2
  exit 2
fi
exec "$@"
