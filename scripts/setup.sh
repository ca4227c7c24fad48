#!/usr/bin/env bash
# Installs everything pgwarden's tests, demo and benchmarks need on a fresh Debian machine.
# Idempotent: a second run only checks, and finishes in seconds.
#   - Debian packages: postgresql-15 (server + client), rsync, openssh-server/client, gnupg, zstd,
#     time (GNU time, for the benchmarks' peak RSS), chromium (headless: scripts/ui-check.ts reads the
#     Temporal UI's page for a restore waiting at approve), pgbackrest (npm run bench:pitr's peer column)
#   - Node 24 LTS (from the npm registry's node@24 package) when the node on PATH is older than 22
#   - Temporal CLI v1.5.1 and versitygw v1.7.0, built with `go install`
#   - npm ci
#   - a `pgwarden` symlink in .tools/bin (→ bin/pgwarden)
# Project-local tools go to .tools/ (git-ignored); scripts/env.sh puts them on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS/bin"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

TEMPORAL_CLI_VERSION="v1.5.1"
VERSITYGW_VERSION="v1.7.0"
NODE_MAJOR=24
# prometheus: for promtool, which checks deploy/prometheus/pgwarden.rules.yml in the tests.
# pgbackrest: npm run bench:pitr recovers with it beside pgwarden (its own repo and config, nothing shared).
APT_PACKAGES=(postgresql-15 postgresql-client-15 rsync openssh-server openssh-client gnupg zstd time prometheus chromium pgbackrest)

# --- Debian packages -------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || die "apt-get not found; install by hand: ${missing[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # The Debian package would create and start a default cluster; tests make their own.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages present: ${APT_PACKAGES[*]}"
fi
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || die "PostgreSQL 15 server not found in /usr/lib/postgresql/15/bin"

# --- Node 24 ---------------------------------------------------------------
node_major() { "$1" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
if command -v node >/dev/null && (( $(node_major node) >= 22 )); then
  say "node $(node -v) on PATH is new enough"
  rm -f "$TOOLS/bin/node"
elif [[ -x "$TOOLS/node/node_modules/node/bin/node" ]] && (( $(node_major "$TOOLS/node/node_modules/node/bin/node") >= NODE_MAJOR )); then
  say "node $("$TOOLS/node/node_modules/node/bin/node" -v) present in .tools"
else
  command -v npm >/dev/null || die "npm not found: need Node >= 22, or npm to install node@${NODE_MAJOR}"
  say "installing Node ${NODE_MAJOR} from the npm registry into .tools/node"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" "node@${NODE_MAJOR}" >/dev/null
fi
if [[ -x "$TOOLS/node/node_modules/node/bin/node" ]] && ! (command -v node >/dev/null && (( $(node_major node) >= 22 ))); then
  ln -sf "$TOOLS/node/node_modules/node/bin/node" "$TOOLS/bin/node"
fi

# --- Go-built servers ------------------------------------------------------
go_install() { # name module version
  local name="$1" module="$2" version="$3" stamp="$TOOLS/bin/.$1.version"
  if [[ -x "$TOOLS/bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then
    say "$name $version present in .tools/bin"; return
  fi
  command -v go >/dev/null || die "go not found: Go is needed to build $name ($module@$version)"
  say "building $name $version with go install (a few minutes the first time)"
  GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "$module@$version" || die "go install $module@$version failed"
  echo "$version" >"$stamp"
}
go_install temporal github.com/temporalio/cli/cmd/temporal "$TEMPORAL_CLI_VERSION"
go_install versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"

# --- pgwarden on PATH ------------------------------------------------------
# The README writes `pgwarden ...`: after `source scripts/env.sh` this symlink is that command
# (bin/pgwarden follows the link back to the checkout).
ln -sfn "$ROOT/bin/pgwarden" "$TOOLS/bin/pgwarden"
say "pgwarden linked in .tools/bin"

# --- npm dependencies ------------------------------------------------------
export PATH="$TOOLS/bin:$PATH"
if [[ -f "$ROOT/package-lock.json" ]]; then
  stamp="$ROOT/node_modules/.pgwarden-lock.sha256"
  want="$( (cat "$ROOT/package-lock.json"; node -v) | sha256sum | cut -d' ' -f1)"
  if [[ -d "$ROOT/node_modules" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    say "node_modules up to date"
  else
    say "npm ci"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
fi

say "done: node $(node -v), $("$TOOLS/bin/temporal" --version | head -1), versitygw $(cat "$TOOLS/bin/.versitygw.version")"
say "put the tools on PATH with: source scripts/env.sh"
