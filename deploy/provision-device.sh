#!/usr/bin/env bash
# Provisions one dnnswarm node on a device, or removes it: the system user `dnnswarm`, the node's
# config /etc/dnnswarm/<id>.conf, its broker password /etc/dnnswarm/<id>.password (readable by that
# user only), the broker's CA certificate, and the service dnnswarm-node@<id>, enabled and started.
# Run it as root on the device, or from an admin machine with --host (over ssh; sudo on the device).
# It prints every change it makes. docs/fleet.md shows it at work on a fleet.
#
#   provision-device.sh [--host [USER@]HOST] --id ID --plan PLAN --stage S [--shard K]
#                       --broker URL [--cafile FILE] [--username NAME --password-file FILE]
#                       [--threads N] [--memory-max SIZE] [--binary PATH] [--root DIR] [--no-start]
#   provision-device.sh [--host [USER@]HOST] --remove --id ID [--root DIR]
set -euo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
unit_template=$(dirname "$self")/dnnswarm-node@.service

usage() {
  cat <<'EOF'
usage: provision-device.sh [--host [USER@]HOST] --id ID --plan PLAN --stage S [options]
       provision-device.sh [--host [USER@]HOST] --remove --id ID [--root DIR]

  --id ID             node id: MQTT client id, topic level and service instance ([A-Za-z0-9_-])
  --plan PLAN         deployment plan, as a path on the device (the model path inside it is
                      relative to the plan), e.g. /usr/local/share/dnnswarm/deploy/lenet5-swarm.json
  --stage S           stage of the plan to serve (name or index)
  --shard K           shard of a sharded stage (default 0)
  --broker URL        broker URL(s): tcp://host:1883, ssl://host:8883 (comma-separated for failover)
  --cafile FILE       CA certificate the broker's TLS certificate is checked against; installed
                      as /etc/dnnswarm/ca.crt
  --username NAME     broker login (default: the node id when --password-file is given)
  --password-file F   file holding the broker password; installed as /etc/dnnswarm/<id>.password,
                      readable only by the user dnnswarm (without it the node logs in anonymously)
  --threads N         kernel threads (default 1)
  --memory-max SIZE   systemd MemoryMax= for this node (e.g. 400M; default: no ceiling)
  --binary PATH       the dnnswarm executable on the device (default /usr/local/bin/dnnswarm)
  --root DIR          write below DIR instead of / (a device image being prepared, or a test):
                      the user goes into DIR/etc/passwd if there is one; nothing is started
  --no-start          enable the service but do not start it now
  --remove            stop and remove the node; the last node removed takes the unit, the CA
                      certificate and the user with it
  --host [USER@]HOST  do all this on HOST over ssh (files given are copied there first)
EOF
}

die() { echo "provision-device: $*" >&2; exit 1; }
say() { echo "provision-device: $*"; }

host="" id="" plan="" stage="" shard=0 broker="" cafile="" username="" password_file="" threads=1
memory_max="" binary=/usr/local/bin/dnnswarm root="" start=1 remove=0
while [ $# -gt 0 ]; do
  case "$1" in
    --host) host=${2:?}; shift ;;
    --id) id=${2:?}; shift ;;
    --plan) plan=${2:?}; shift ;;
    --stage) stage=${2:?}; shift ;;
    --shard) shard=${2:?}; shift ;;
    --broker) broker=${2:?}; shift ;;
    --cafile) cafile=${2:?}; shift ;;
    --username) username=${2:?}; shift ;;
    --password-file) password_file=${2:?}; shift ;;
    --threads) threads=${2:?}; shift ;;
    --memory-max) memory_max=${2:?}; shift ;;
    --binary) binary=${2:?}; shift ;;
    --root) root=${2:?}; shift ;;
    --no-start) start=0 ;;
    --remove) remove=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (--help lists them)" ;;
  esac
  shift
done

# --- checks: one clear line for anything wrong, before anything changes ---
[ -n "$id" ] || die "--id is required"
[[ "$id" =~ ^[A-Za-z0-9_-]+$ ]] || die "--id '$id': use only letters, digits, '_' and '-' (it is a topic level and a unit name)"
if [ "$remove" = 0 ]; then
  [ -n "$plan" ] || die "--plan is required"
  [ -n "$stage" ] || die "--stage is required"
  [ -n "$broker" ] || die "--broker is required"
  [[ "$shard" =~ ^[0-9]+$ ]] || die "--shard '$shard': expected a number"
  [[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads '$threads': expected a positive number"
  [ -z "$memory_max" ] || [[ "$memory_max" =~ ^[0-9]+[KMGT]?$ ]] || die "--memory-max '$memory_max': expected e.g. 400M"
  [ -z "$cafile" ] || [ -r "$cafile" ] || die "--cafile $cafile: cannot read it"
  [ -z "$password_file" ] || [ -r "$password_file" ] || die "--password-file $password_file: cannot read it"
  [ -z "$password_file" ] || [ -s "$password_file" ] || die "--password-file $password_file: it is empty"
  [ -n "$password_file" ] || [ -z "$username" ] || die "--username needs --password-file (the password never goes on a command line)"
  [ -n "$username" ] || [ -z "$password_file" ] || username=$id
  for v in "$plan" "$stage" "$broker" "$username" "$binary"; do
    [[ "$v" != *$'\n'* ]] || die "values may not contain line breaks"
  done
  [[ "$binary" == /* ]] || die "--binary $binary: give the absolute path (systemd needs one)"
  [ -r "$unit_template" ] || die "cannot read the unit template $unit_template"
fi

# --- on another device: copy this script, the unit and the files given; run it there ---
if [ -n "$host" ]; then
  stage_dir=$(mktemp -d)
  trap 'rm -rf "$stage_dir"' EXIT
  cp "$self" "$stage_dir/provision-device.sh"
  [ "$remove" = 1 ] || cp "$unit_template" "$stage_dir/"
  args=(--id "$id")
  if [ "$remove" = 1 ]; then
    args+=(--remove)
  else
    args+=(--plan "$plan" --stage "$stage" --shard "$shard" --broker "$broker" --threads "$threads" --binary "$binary")
    [ -z "$cafile" ] || { cp "$cafile" "$stage_dir/ca.crt"; args+=(--cafile ca.crt); }
    [ -z "$password_file" ] || { (umask 077; cp "$password_file" "$stage_dir/password"); args+=(--username "$username" --password-file password); }
    [ -z "$memory_max" ] || args+=(--memory-max "$memory_max")
    [ "$start" = 1 ] || args+=(--no-start)
  fi
  [ -z "$root" ] || args+=(--root "$root")
  quoted=$(printf ' %q' "${args[@]}")
  say "running on $host:$quoted"
  # As root there (sudo when the ssh user is not), unless it only writes below --root.
  run="if [ \"\$(id -u)\" = 0 ]; then bash ./provision-device.sh$quoted; else sudo bash ./provision-device.sh$quoted; fi"
  [ -z "$root" ] || run="bash ./provision-device.sh$quoted"
  # The files travel inside the ssh connection as a tar stream, into a private temporary folder.
  # shellcheck disable=SC2029  # $run is meant to expand here: the arguments, quoted for the far side
  tar -C "$stage_dir" -cf - . | ssh "$host" "set -e; d=\$(mktemp -d); trap 'rm -rf \"\$d\"' EXIT; tar -C \"\$d\" -xf -; cd \"\$d\"; $run"
  exit $?
fi

# --- on this device ---
[ -n "$root" ] || [ "$(id -u)" = 0 ] || die "run as root (or with sudo): it creates a user and a system service"
if [ -n "$root" ]; then
  mkdir -p "$root"
  root=$(cd "$root" && pwd)
fi
etc=$root/etc/dnnswarm
units=$root/etc/systemd/system
unit=dnnswarm-node@$id.service
wants=$units/multi-user.target.wants/$unit
live_systemd() { [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }
user_exists() {
  if [ -z "$root" ]; then getent passwd dnnswarm >/dev/null
  else [ -f "$root/etc/passwd" ] && grep -q '^dnnswarm:' "$root/etc/passwd"; fi
}
# Files for the node's user: owned by it where the user exists, else left to root (a test folder).
own() {  # own OWNER:GROUP PATH
  user_exists || return 0
  if [ -z "$root" ]; then chown "$1" "$2"; return; fi
  # Below --root, numeric ids: the names are the image's, not this machine's.
  local uid gid
  uid=$(awk -F: '$1 == "dnnswarm" {print $3}' "$root/etc/passwd")
  gid=$(awk -F: '$1 == "dnnswarm" {print $4}' "$root/etc/passwd")
  local o=${1%%:*} g=${1##*:}
  [ "$o" = dnnswarm ] && o=$uid || o=0
  [ "$g" = dnnswarm ] && g=$gid || g=0
  chown "$o:$g" "$2"
}
put() {  # put MODE OWNER:GROUP SRC DEST — installs a file and says so
  install -m "$1" "$3" "$4"
  own "$2" "$4"
  if user_exists || [ "$2" = root:root ]; then say "wrote $4 (mode $1, $2)"
  else say "wrote $4 (mode $1, root's: no user dnnswarm here)"; fi
}

if [ "$remove" = 1 ]; then
  if live_systemd && systemctl disable --now "$unit" >/dev/null 2>&1; then say "stopped and disabled $unit"; fi
  for f in "$wants" "$etc/$id.conf" "$etc/$id.password"; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    rm -f "$f"
    say "removed $f"
  done
  if [ -d "$units/$unit.d" ]; then rm -rf "$units/$unit.d"; say "removed $units/$unit.d"; fi
  if ! ls "$etc"/*.conf >/dev/null 2>&1; then   # the last node of this device
    for f in "$units/dnnswarm-node@.service" "$etc/ca.crt"; do
      [ -e "$f" ] || continue
      rm -f "$f"
      say "removed $f"
    done
    if [ -d "$etc" ]; then
      if rmdir "$etc" 2>/dev/null; then say "removed $etc"; else say "kept $etc: it holds other files"; fi
    fi
    if user_exists; then
      # userdel takes the group along only where login.defs says USERGROUPS_ENAB (not below a --root).
      if [ -z "$root" ]; then
        userdel dnnswarm
        if getent group dnnswarm >/dev/null; then groupdel dnnswarm; fi
      else
        userdel --prefix "$root" dnnswarm
        if grep -q '^dnnswarm:' "$root/etc/group"; then groupdel --prefix "$root" dnnswarm; fi
      fi
      say "removed the user dnnswarm"
    fi
  fi
  ! live_systemd || systemctl daemon-reload
  say "node $id removed"
  exit 0
fi

# The user: a system account with no shell and no home.
if user_exists; then
  say "user dnnswarm exists"
elif [ -z "$root" ]; then
  useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin dnnswarm
  say "created the system user dnnswarm"
elif [ -f "$root/etc/passwd" ]; then
  useradd --prefix "$root" --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin dnnswarm
  say "created the system user dnnswarm in $root"
else
  say "no $root/etc/passwd: no user dnnswarm made, files stay root's"
fi

mkdir -p "$etc"
chmod 0750 "$etc"
own root:dnnswarm "$etc"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
if [ -n "$cafile" ]; then
  put 0644 root:root "$cafile" "$etc/ca.crt"
fi
if [ -n "$password_file" ]; then
  put 0400 dnnswarm:dnnswarm "$password_file" "$etc/$id.password"
fi
{
  echo "# dnnswarm node $id, written by provision-device.sh; keys as in \`dnnswarm node --help\`."
  echo "id = $id"
  echo "plan = $plan"
  echo "stage = $stage"
  echo "shard = $shard"
  echo "threads = $threads"
  echo "broker = $broker"
  [ -z "$cafile" ] || echo "cafile = /etc/dnnswarm/ca.crt"
  [ -z "$username" ] || echo "username = $username"
  [ -z "$password_file" ] || echo "password-file = /etc/dnnswarm/$id.password"
} > "$tmp"
put 0640 root:dnnswarm "$tmp" "$etc/$id.conf"

mkdir -p "$units"
sed "s|^ExecStart=/usr/local/bin/dnnswarm |ExecStart=$binary |" "$unit_template" > "$tmp"
put 0644 root:root "$tmp" "$units/dnnswarm-node@.service"
if [ -n "$memory_max" ]; then
  mkdir -p "$units/$unit.d"
  printf '[Service]\nMemoryMax=%s\n' "$memory_max" > "$tmp"
  put 0644 root:root "$tmp" "$units/$unit.d/memory.conf"
elif [ -d "$units/$unit.d" ]; then
  rm -rf "$units/$unit.d"
  say "removed $units/$unit.d"
fi
[ -n "$root" ] || [ -x "$binary" ] || say "warning: $binary is not there yet: install dnnswarm before the service starts"
[ -e "$root$plan" ] || say "warning: the plan $plan is not on this device yet"

if live_systemd; then
  systemctl daemon-reload
  if [ "$start" = 1 ]; then
    systemctl enable "$unit" >/dev/null 2>&1
    systemctl restart "$unit"
    say "enabled and (re)started $unit (journalctl -u $unit shows its log)"
  else
    systemctl enable "$unit" >/dev/null 2>&1
    say "enabled $unit; it starts at boot (or: systemctl start $unit)"
  fi
else
  # What `systemctl enable` does for this unit (WantedBy=multi-user.target), for a root with no systemd running.
  mkdir -p "$(dirname "$wants")"
  ln -sfn /etc/systemd/system/dnnswarm-node@.service "$wants"
  say "enabled $unit (link $wants); it starts at boot"
fi
say "node $id provisioned: stage $stage, shard $shard of $plan, broker $broker"
