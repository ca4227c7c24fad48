# Source this to put pgwarden's project-local tools (.tools/bin: node 24, temporal, versitygw) and
# the PostgreSQL 15 binaries on PATH.
_pgw_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
export PATH="$_pgw_root/.tools/bin:$_pgw_root/node_modules/.bin:/usr/lib/postgresql/15/bin:$PATH"
unset _pgw_root
