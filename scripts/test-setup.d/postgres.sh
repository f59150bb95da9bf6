# shellcheck shell=bash
# Sourced by scripts/test-setup.sh: starts the local PostgreSQL cluster, makes sure a test role and
# database exist, and exports TESK_TEST_POSTGRES_URL for the store tests. The role only accepts
# password logins over loopback; its fixed password is for tests on this machine only.
# Never fails the setup: when PostgreSQL cannot be used it says why and exports nothing, and the
# PostgreSQL tests are skipped.

tesk_pg_role=tesk_test
tesk_pg_password=tesk_test
tesk_pg_database=tesk_test

tesk_pg_as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  elif command -v sudo >/dev/null; then
    sudo -n -u postgres "$@"
  else
    return 1
  fi
}

tesk_pg_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

tesk_pg_setup() {
  if ! command -v pg_ctlcluster >/dev/null || ! command -v pg_lsclusters >/dev/null; then
    echo "test-setup: postgres: PostgreSQL is not installed (no pg_ctlcluster); PostgreSQL tests are skipped"
    return 1
  fi

  local cluster version name port status output
  cluster=$(pg_lsclusters -h 2>/dev/null | head -n 1)
  if [ -z "$cluster" ]; then
    version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n 1)
    if [ -z "$version" ] || ! tesk_pg_as_root pg_createcluster "$version" main >/dev/null 2>&1; then
      echo "test-setup: postgres: no cluster exists and none could be created; PostgreSQL tests are skipped"
      return 1
    fi
    cluster=$(pg_lsclusters -h 2>/dev/null | head -n 1)
  fi
  read -r version name port status _ <<<"$cluster"

  if [[ "$status" != online* ]]; then

    if ! output=$(tesk_pg_as_root pg_ctlcluster "$version" "$name" start 2>&1); then
      # A concurrent start by another run is fine; anything else is reported.
      if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version  *$name .*online"; then
        echo "test-setup: postgres: cannot start cluster $version/$name: $output"
        echo "test-setup: postgres: PostgreSQL tests are skipped"
        return 1
      fi
    fi
  fi

  local waited=0
  until pg_isready -q -h 127.0.0.1 -p "$port"; do
    if ((waited >= 60)); then
      echo "test-setup: postgres: cluster $version/$name does not accept TCP connections on" \
        "127.0.0.1:$port after 30 s; PostgreSQL tests are skipped"
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done

  local sql="DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$tesk_pg_role') THEN
      CREATE ROLE $tesk_pg_role LOGIN CREATEDB PASSWORD '$tesk_pg_password';
    ELSE
      ALTER ROLE $tesk_pg_role LOGIN CREATEDB PASSWORD '$tesk_pg_password';
    END IF;
  END \$\$;"
  if ! output=$(tesk_pg_as_postgres psql -X -q -p "$port" -v ON_ERROR_STOP=1 -c "$sql" 2>&1); then
    echo "test-setup: postgres: cannot create role $tesk_pg_role: $output"
    return 1
  fi
  if [ "$(tesk_pg_as_postgres psql -X -tA -p "$port" -c \
    "SELECT 1 FROM pg_database WHERE datname = '$tesk_pg_database'" 2>/dev/null)" != 1 ]; then
    # Two runs may race to create it; only a database that is still missing afterwards is an error.
    tesk_pg_as_postgres createdb -p "$port" -O "$tesk_pg_role" "$tesk_pg_database" >/dev/null 2>&1 || true
  fi

  if ! output=$(PGPASSWORD=$tesk_pg_password psql -X -tA -h 127.0.0.1 -p "$port" \
    -U "$tesk_pg_role" -d "$tesk_pg_database" -c "SELECT 1" 2>&1); then
    echo "test-setup: postgres: cannot log in as $tesk_pg_role on 127.0.0.1:$port: $output"
    return 1
  fi

  echo "export TESK_TEST_POSTGRES_URL=postgresql://$tesk_pg_role:$tesk_pg_password@127.0.0.1:$port/$tesk_pg_database" >>"$env_file"
  echo "test-setup: postgres: PostgreSQL $version on 127.0.0.1:$port, database $tesk_pg_database"
}

tesk_pg_setup || true
unset -f tesk_pg_setup tesk_pg_as_postgres tesk_pg_as_root
unset tesk_pg_role tesk_pg_password tesk_pg_database
