#!/usr/bin/env bash
# deploy/provision-device.sh, run with --root into a temporary device root (its own /etc/passwd):
# the files it writes (config, password, CA, unit, drop-in, enable link), their modes and owners,
# the node actually serving from the config it wrote (a real Mosquitto, a real `dnnswarm node`),
# removal node by node, refusals of bad arguments, and the --host path's packaging.
# Usage: provision-device-test.sh BUILD_DIR   (ctest passes the build folder)
set -euo pipefail
build=$(cd "${1:?usage: provision-device-test.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
script=$src/deploy/provision-device.sh
binary=$build/dnnswarm
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "provision-device-test: FAILED: $*" >&2; exit 1; }
# Owners can be given only by root; another user's run checks the modes alone.
as_root=false
[ "$(id -u)" != 0 ] || as_root=true
check_mode() {  # check_mode MODE UID GID FILE
  local got want="$1 $2 $3"
  got=$(stat -c '%a %u %g' "$4")
  $as_root || { got=${got%% *}; want=$1; }
  [ "$got" = "$want" ] || fail "$4: mode/uid/gid '$got', expected '$want'"
}

root=$work/device
mkdir -p "$root/etc"
if $as_root; then   # a device root with its own user database, for the user dnnswarm to go into
  echo 'root:x:0:0:root:/root:/bin/bash' > "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
  echo 'root:*:19000:0:99999:7:::' > "$root/etc/shadow"
  echo 'root:*::' > "$root/etc/gshadow"
else
  echo "provision-device-test: not root: the user dnnswarm and the files' owners are not checked"
fi
echo 's3cret pass' > "$work/cam-a.password"
echo '-----BEGIN CERTIFICATE----- (a test CA) -----END CERTIFICATE-----' > "$work/ca.pem"
plan=$src/deploy/lenet5-swarm.json

# --- one node with a login, TLS and a memory ceiling ---
"$script" --root "$root" --id cam-a --plan "$plan" --stage conv2 --shard 0 --broker ssl://broker.lan:8883 \
  --cafile "$work/ca.pem" --password-file "$work/cam-a.password" --memory-max 300M --binary "$binary" \
  > "$work/out.txt"
cat "$work/out.txt"
uid="" gid=""
if $as_root; then
  grep -q '^dnnswarm:x:[0-9]*:[0-9]*::/nonexistent:/usr/sbin/nologin$' "$root/etc/passwd" || fail "no system user dnnswarm in the root's passwd"
  uid=$(awk -F: '$1 == "dnnswarm" {print $3}' "$root/etc/passwd")
  gid=$(awk -F: '$1 == "dnnswarm" {print $4}' "$root/etc/passwd")
fi
etc=$root/etc/dnnswarm
units=$root/etc/systemd/system
check_mode 750 0 "$gid" "$etc"
check_mode 640 0 "$gid" "$etc/cam-a.conf"
check_mode 400 "$uid" "$gid" "$etc/cam-a.password"
check_mode 644 0 0 "$etc/ca.crt"
cmp -s "$work/cam-a.password" "$etc/cam-a.password" || fail "the password file differs from the one given"
cmp -s "$work/ca.pem" "$etc/ca.crt" || fail "the CA file differs from the one given"
expected="id = cam-a
plan = $plan
stage = conv2
shard = 0
threads = 1
broker = ssl://broker.lan:8883
cafile = /etc/dnnswarm/ca.crt
username = cam-a
password-file = /etc/dnnswarm/cam-a.password"
[ "$(grep -v '^#' "$etc/cam-a.conf")" = "$expected" ] || { cat "$etc/cam-a.conf"; fail "unexpected config"; }
grep -q 's3cret' "$etc/cam-a.conf" "$work/out.txt" && fail "the password shows in the config or the output"
grep -qx "ExecStart=$binary node --config /etc/dnnswarm/%i.conf" "$units/dnnswarm-node@.service" || fail "ExecStart does not run $binary"
grep -qx 'MemoryMax=300M' "$units/dnnswarm-node@cam-a.service.d/memory.conf" || fail "no MemoryMax drop-in"
[ "$(readlink "$units/multi-user.target.wants/dnnswarm-node@cam-a.service")" = /etc/systemd/system/dnnswarm-node@.service ] \
  || fail "dnnswarm-node@cam-a is not enabled"
grep -q "wrote $etc/cam-a.password (mode 0400" "$work/out.txt" || fail "the output does not say what it wrote"
if command -v systemd-analyze >/dev/null; then
  cp "$units/dnnswarm-node@.service" "$work/dnnswarm-node@cam-a.service"
  systemd-analyze verify "$work/dnnswarm-node@cam-a.service" || fail "systemd-analyze rejects the unit"
  echo "systemd-analyze verify: unit accepted"
else
  echo "systemd-analyze is not installed here: the unit's syntax is not checked by systemd"
fi

# --- a second, anonymous node on the same device; it really serves from its config ---
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mosquitto -p "$port" > "$work/mosquitto.log" 2>&1 &
pids+=($!)
# 127.0.0.1, not localhost: a minimal root may have no /etc/hosts entry for it.
for _ in $(seq 100); do
  mosquitto_pub -h 127.0.0.1 -p "$port" -t probe -m up 2>/dev/null && break
  sleep 0.1
done
"$script" --root "$root" --id cam_b --plan "$plan" --stage conv1 --broker "tcp://127.0.0.1:$port" --binary "$binary" >/dev/null
[ ! -e "$units/dnnswarm-node@cam_b.service.d" ] || fail "a drop-in without --memory-max"
grep -q '^username\|^password-file\|^cafile' "$etc/cam_b.conf" && fail "an anonymous node's config names a login"
"$binary" node --config "$etc/cam_b.conf" > "$work/node.log" 2>&1 &
node=$!
pids+=("$node")
status=$(mosquitto_sub -h 127.0.0.1 -p "$port" -t dnnswarm/node/cam_b/status -C 1 -W 60) || { cat "$work/node.log" >&2; fail "no status from the node"; }
[ "$status" = online ] || fail "node status '$status'"
kill -TERM "$node"
wait "$node" || fail "the node did not stop cleanly on SIGTERM"
grep -q '"node":"cam_b"' "$work/node.log" || fail "the node's final figures are missing: $(cat "$work/node.log")"
echo "node served from its provisioned config: $(tail -n 1 "$work/node.log")"

# --- removal: cam-a goes, cam_b and what it shares stay; then cam_b, and nothing is left ---
"$script" --root "$root" --remove --id cam-a
for f in "$etc/cam-a.conf" "$etc/cam-a.password" "$units/dnnswarm-node@cam-a.service.d" "$units/multi-user.target.wants/dnnswarm-node@cam-a.service"; do
  if [ -e "$f" ] || [ -L "$f" ]; then fail "$f is still there after --remove"; fi
done
for f in "$etc/cam_b.conf" "$etc/ca.crt" "$units/dnnswarm-node@.service"; do [ -e "$f" ] || fail "removing cam-a took $f"; done
! $as_root || grep -q '^dnnswarm:' "$root/etc/passwd" || fail "removing one of two nodes removed the user"
"$script" --root "$root" --remove --id cam_b
left=$(find "$root" -type f -o -type l | grep -v "^$root/etc/\(passwd\|group\|shadow\|gshadow\)-\?$" || true)
[ -z "$left" ] || fail "left behind after removing every node: $left"
if $as_root && grep -q '^dnnswarm:' "$root/etc/passwd" "$root/etc/group"; then fail "the user dnnswarm outlived the last node"; fi

# --- refusals: one line, exit code 1, nothing written ---
refuse() {  # refuse FRAGMENT ARGS...
  local fragment=$1 err rc
  shift
  set +e
  err=$("$script" --root "$work/refused" "$@" 2>&1)
  rc=$?
  set -e
  [ "$rc" = 1 ] || fail "exit $rc for: $*"
  if [ "$(echo "$err" | wc -l)" != 1 ] || [[ "$err" != *"$fragment"* ]]; then fail "for '$*' it said: $err"; fi
  [ ! -e "$work/refused" ] || fail "a refused call wrote files"
}
refuse "--id 'a/b'" --id a/b --plan "$plan" --stage conv1 --broker tcp://h:1883
refuse "--plan is required" --id x --stage conv1 --broker tcp://h:1883
refuse "--username needs --password-file" --id x --plan "$plan" --stage conv1 --broker tcp://h:1883 --username x
refuse "--memory-max 'lots'" --id x --plan "$plan" --stage conv1 --broker tcp://h:1883 --memory-max lots
refuse "cannot read it" --id x --plan "$plan" --stage conv1 --broker tcp://h:1883 --cafile "$work/none.pem"
refuse "unknown option '--pasword-file'" --id x --pasword-file f
refuse "--binary dnnswarm: give the absolute path" --id x --plan "$plan" --stage conv1 --broker tcp://h:1883 --binary dnnswarm

# --- --host: the script and the files go through `ssh HOST COMMAND` as a tar stream. Here `ssh` is
# a local stand-in that runs COMMAND in a shell (the transport is OpenSSH's; this checks what we
# send through it: files, quoting of awkward values, the same result as a local run).
mkdir -p "$work/bin"
# shellcheck disable=SC2016  # $1 and $2 belong to the stand-in
printf '#!/bin/sh\n[ "$1" = pi@cam-c.lan ] || exit 255\nexec bash -c "$2"\n' > "$work/bin/ssh"
chmod +x "$work/bin/ssh"
remote=$work/remote
PATH=$work/bin:$PATH "$script" --host pi@cam-c.lan --root "$remote" --id cam-c --plan "/opt/my plans/p.json" \
  --stage head --broker ssl://broker.lan:8883 --cafile "$work/ca.pem" --password-file "$work/cam-a.password" \
  --binary "$binary" > "$work/remote.txt" 2>&1 || { cat "$work/remote.txt"; fail "--host run failed"; }
grep -qx 'plan = /opt/my plans/p.json' "$remote/etc/dnnswarm/cam-c.conf" || fail "the plan path lost its space on the way"
cmp -s "$work/cam-a.password" "$remote/etc/dnnswarm/cam-c.password" || fail "the password did not arrive"
cmp -s "$work/ca.pem" "$remote/etc/dnnswarm/ca.crt" || fail "the CA did not arrive"
PATH=$work/bin:$PATH "$script" --host pi@cam-c.lan --root "$remote" --remove --id cam-c >/dev/null
[ ! -e "$remote/etc/dnnswarm" ] || fail "--host --remove left $remote/etc/dnnswarm"
echo "provision-device-test: passed"
