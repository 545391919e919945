#!/usr/bin/env bash
# Installs Debian's nats-server if missing and starts one in the background (for the NATS tests,
# the bench and local multi-node runs). Idempotent: a server already listening on the port is
# reused. Prints the pid of the server on stdout (empty with --install-only).
#
#   scripts/nats-server.sh [PORT] [--install-only]      PORT default 4222
set -euo pipefail
PORT=4222
INSTALL_ONLY=0
for a in "$@"; do
  case "$a" in
    --install-only) INSTALL_ONLY=1 ;;
    [0-9]*) PORT="$a" ;;
    *) echo "usage: $0 [PORT] [--install-only]" >&2; exit 2 ;;
  esac
done

if ! command -v nats-server >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  # Only refresh the package lists when apt does not know the package yet.
  if ! apt-cache show nats-server >/dev/null 2>&1; then $SUDO apt-get update -qq >&2; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >&2
fi
[ "$INSTALL_ONLY" = 1 ] && exit 0

PIDFILE="${TMPDIR:-/tmp}/moe-nats-$PORT.pid"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then cat "$PIDFILE"; exit 0; fi
nohup nats-server -a 127.0.0.1 -p "$PORT" >"${TMPDIR:-/tmp}/moe-nats-$PORT.log" 2>&1 &
echo $! >"$PIDFILE"
# Wait until it accepts connections, so callers can connect at once.
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then cat "$PIDFILE"; exit 0; fi
  sleep 0.1
done
echo "nats-server did not start on port $PORT (see ${TMPDIR:-/tmp}/moe-nats-$PORT.log)" >&2
exit 1
