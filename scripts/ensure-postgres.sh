# Sourced: puts PostgreSQL's server programs (initdb, pg_ctl) and psql on the PATH, installing
# PostgreSQL from the distribution when they are missing. The tests start their own throwaway
# servers; nothing is started here.
if ! command -v initdb >/dev/null 2>&1; then
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && export PATH="$dir:$PATH" && break
  done
fi
if ! command -v initdb >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
  echo "installing PostgreSQL (the tests of the PostgreSQL store start throwaway servers)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && export PATH="$dir:$PATH" && break
  done
fi
command -v initdb >/dev/null 2>&1 || { echo "PostgreSQL's initdb is not available" >&2; return 1; }
