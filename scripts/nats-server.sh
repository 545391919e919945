#!/usr/bin/env bash
# Installs Debian's nats-server if missing and starts one in the background (for the NATS tests,
# the bench and local multi-node runs), with authentication: clients must log in as user "moe"
# with a secret. The secret is MOE_NATS_SECRET (or --secret S), else a random one generated on the
# first start and kept, with the server's config, in a file only this user can read. Idempotent:
# a server already running on the port is reused (and its URL printed again).
#
# Prints the URL to give to `moe worker --nats` / `moe serve --nats` (or NATS_URL) on stdout:
#   nats://moe:SECRET@127.0.0.1:PORT
# Keep it out of shell history and logs; moe prints it with the secret masked.
#
#   scripts/nats-server.sh [PORT] [--secret S] [--no-auth] [--install-only]    PORT default 4222
#   --no-auth: an open server (anyone who can reach the port can run actors' messages): loopback only
set -euo pipefail
PORT=4222
INSTALL_ONLY=0
AUTH=1
SECRET="${MOE_NATS_SECRET:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --install-only) INSTALL_ONLY=1 ;;
    --no-auth) AUTH=0 ;;
    --secret) shift; SECRET="${1:?--secret needs a value}" ;;
    --secret=*) SECRET="${1#--secret=}" ;;
    [0-9]*) PORT="$1" ;;
    *) echo "usage: $0 [PORT] [--secret S] [--no-auth] [--install-only]" >&2; exit 2 ;;
  esac
  shift
done

if ! command -v nats-server >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  # Only refresh the package lists when apt does not know the package yet.
  if ! apt-cache show nats-server >/dev/null 2>&1; then $SUDO apt-get update -qq >&2; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >&2
fi
[ "$INSTALL_ONLY" = 1 ] && exit 0

DIR="${TMPDIR:-/tmp}"
PIDFILE="$DIR/moe-nats-$PORT.pid"
CONF="$DIR/moe-nats-$PORT.conf"
LOG="$DIR/moe-nats-$PORT.log"

url() {
  if grep -q '^authorization' "$CONF" 2>/dev/null; then
    echo "nats://moe:$(sed -n 's/^ *password: "\(.*\)"$/\1/p' "$CONF")@127.0.0.1:$PORT"
  else
    echo "nats://127.0.0.1:$PORT"
  fi
}

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "nats-server already running on port $PORT (pid $(cat "$PIDFILE"))" >&2
  url
  exit 0
fi

umask 077 # the config holds the secret
if [ "$AUTH" = 1 ]; then
  # A fresh secret for a fresh server, unless one was given: 24 random bytes, URL-safe.
  [ -n "$SECRET" ] || SECRET="$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  case "$SECRET" in *[!A-Za-z0-9._~-]*) echo "--secret: use letters, digits and . _ ~ - only (it goes in a URL)" >&2; exit 2 ;; esac
  cat >"$CONF" <<EOF
listen: 127.0.0.1:$PORT
authorization {
  user: moe
  password: "$SECRET"
}
EOF
else
  echo "listen: 127.0.0.1:$PORT" >"$CONF"
fi

nohup nats-server -c "$CONF" >"$LOG" 2>&1 &
echo $! >"$PIDFILE"
# Wait until it accepts connections, so callers can connect at once.
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "nats-server started on port $PORT (pid $(cat "$PIDFILE"), config $CONF)" >&2
    url
    exit 0
  fi
  sleep 0.1
done
echo "nats-server did not start on port $PORT (see $LOG)" >&2
exit 1
