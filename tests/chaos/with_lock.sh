#!/usr/bin/env bash
# Runs a command (the chaos suite) under /tmp/chaos.lock: the lock is taken
# first (other developers do not start tests while it exists), then this waits
# until no other pytest runs on the machine (the chaos tests stop and start the
# shared services), and the lock is removed when the command ends, however it ends.
#
#   tests/chaos/with_lock.sh COMMAND... [::: COMMAND...]...
#
# Commands separated by `:::` run one after the other, all of them; the exit
# status is the first failure's (a later command that selected no tests,
# pytest's 5, counts as success).
set -uo pipefail

LOCK="${CHAOS_LOCK:-/tmp/chaos.lock}"
WAIT_SECONDS="${CHAOS_WAIT_SECONDS:-3600}"

log() { printf '[chaos] %s\n' "$*" >&2; }

if [ -e "$LOCK" ] && kill -0 "$(cat "$LOCK" 2>/dev/null || echo 0)" 2>/dev/null; then
  log "another chaos run holds $LOCK (pid $(cat "$LOCK")); waiting"
  while [ -e "$LOCK" ] && kill -0 "$(cat "$LOCK" 2>/dev/null || echo 0)" 2>/dev/null; do sleep 2; done
fi
echo $$ >"$LOCK"
trap 'rm -f "$LOCK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ppid_of() { awk '/^PPid:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 1; }

# This script's own ancestors (make, the recipe's shell) and descendants are not "others".
mine=" "
p=$$
while [ "${p:-1}" -gt 1 ]; do mine+="$p "; p="$(ppid_of "$p")"; done

others() {
  local pid p
  for pid in $(pgrep -f pytest); do
    [ -d "/proc/$pid" ] || continue
    [[ $mine == *" $pid "* ]] && continue
    p="$pid"
    while [ "${p:-1}" -gt 1 ] && [ "$p" != $$ ]; do p="$(ppid_of "$p")"; done
    [ "$p" = $$ ] && continue
    [ -d "/proc/$pid" ] && echo "$pid"
  done
}

deadline=$((SECONDS + WAIT_SECONDS))
said=""
while busy="$(others)"; [ -n "$busy" ]; do
  [ -n "$said" ] || { log "waiting for other pytest runs to finish: $(echo $busy)"; said=1; }
  [ $SECONDS -lt $deadline ] || { log "gave up after ${WAIT_SECONDS}s: pytest still running ($(echo $busy))"; exit 1; }
  sleep 2
done
log "lock $LOCK taken"
started=$SECONDS
status=0
first=1
run() {
  [ $# -gt 0 ] || return 0
  log "running: $*"
  local rc=0
  "$@" || rc=$?
  if [ $rc = 5 ] && [ $first = 0 ]; then rc=0; fi
  [ $status != 0 ] || status=$rc
  first=0
}
command=()
for arg in "$@"; do
  if [ "$arg" = ":::" ]; then run "${command[@]}"; command=(); else command+=("$arg"); fi
done
run "${command[@]}"
log "finished in $((SECONDS - started))s (exit $status); releasing the lock"
exit $status
