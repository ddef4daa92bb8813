# Shared by scripts/test and scripts/run.

step() {
  local name=$1; shift
  echo "==> $name: $*"
  "$@"
}

# Installs the Debian packages that are not installed yet (apt-get update only if needed).
need_apt_packages() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "==> installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Rust from rustup, at the version in Cargo.toml (rust-version).
need_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || {
      need_apt_packages curl ca-certificates
      curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    }
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
}

# The secure channel must use ring only: aws-lc-rs must never be compiled in.
no_aws_lc() {
  local out
  if out=$(cargo tree --workspace --locked --target all -i aws-lc-rs 2>&1); then
    echo "aws-lc-rs is in the dependency tree:" >&2
    echo "$out" >&2
    return 1
  fi
  # cargo tree fails for other reasons too (a broken lock file): only this one is a pass.
  if ! grep -q "did not match any packages" <<<"$out"; then
    echo "could not check the dependency tree: $out" >&2
    return 1
  fi
  echo "ok: aws-lc-rs is not a dependency"
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

# A real PostgreSQL on loopback for the storage tests: installed and started if needed, with a
# `tresor` role; exports TRESOR_TEST_POSTGRES unless it is already set.
need_postgres() {
  if [ -n "${TRESOR_TEST_POSTGRES:-}" ]; then return 0; fi
  need_apt_packages postgresql postgresql-client
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  local version
  version=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1}')
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    $sudo pg_createcluster "$version" main
  fi
  $sudo pg_ctlcluster "$version" main start 2>/dev/null || true
  for _ in $(seq 1 30); do
    as_postgres psql -qAtc "SELECT 1" >/dev/null 2>&1 && break
    sleep 1
  done
  as_postgres psql -qAtc "SELECT 1 FROM pg_roles WHERE rolname = 'tresor'" | grep -q 1 ||
    as_postgres psql -qc "CREATE ROLE tresor LOGIN CREATEDB PASSWORD 'tresor'"
  export TRESOR_TEST_POSTGRES="postgres://tresor:tresor@127.0.0.1:5432"
  # Every storage test makes a database of its own and leaves it for inspection; the previous
  # runs' are dropped here, so that runs do not fill the disk (some 8 MiB each, 130 a run).
  as_postgres psql -qAtc "SELECT datname FROM pg_database WHERE datname LIKE 'tresor\_test\_%' \
      OR datname LIKE 'tresor\_bench\_%'" |
    while read -r db; do as_postgres psql -qc "DROP DATABASE \"$db\" WITH (FORCE)"; done
  echo "ok: PostgreSQL $version at $TRESOR_TEST_POSTGRES"
}

# Python packages the tests use as independent implementations: pyotp (TOTP) and
# client-bank-1c (a 1CClientBankExchange reader and writer).
need_python_packages() {
  python3 -c "import pyotp, client_bank_1c, prometheus_client, aiosmtpd" 2>/dev/null && return 0
  need_apt_packages python3-pip
  # prometheus-client: its OpenMetrics parser reads the bank's /metrics in the tests.
  # aiosmtpd: the SMTP server the bank's mail is sent to in the tests.
  local packages=(pyotp client-bank-1c==0.3 prometheus-client==0.26.0 aiosmtpd==1.4.6)
  python3 -m pip install --quiet "${packages[@]}" 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages "${packages[@]}"
}

# What the desktop app builds with (Tauri v2 on WebKitGTK) and its end-to-end tests need: a
# virtual display, WebKitWebDriver, a D-Bus session with gnome-keyring's Secret Service.
DESKTOP_BUILD_PACKAGES=(libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libsoup-3.0-dev
  libayatana-appindicator3-dev libxdo-dev libssl-dev libdbus-1-dev file)
DESKTOP_TEST_PACKAGES=(xvfb xauth webkit2gtk-driver dbus dbus-x11 at-spi2-core gnome-keyring
  libsecret-1-0 zbar-tools librsvg2-bin imagemagick)

# Node.js and npm (Debian's, if none is installed), then the UI's locked npm packages.
need_ui() {
  command -v npm >/dev/null 2>&1 || need_apt_packages nodejs npm
  if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
    # The committed lock file lists every platform's optional packages (the Tauri CLI's per-OS
    # binaries, which the Windows and macOS installer builds need): `npm ci` installs exactly
    # it and never rewrites it.
    (cd ui && npm ci --no-audit --no-fund)
  fi
}

# tauri-driver, the WebDriver server for Tauri apps, from crates.io.
need_tauri_driver() {
  command -v tauri-driver >/dev/null 2>&1 || cargo install --locked tauri-driver
}

# secretstorage, an independent Secret Service client: the end-to-end test reads the whole
# credential store back with it.
need_secretstorage() {
  python3 -c "import secretstorage" 2>/dev/null && return 0
  need_apt_packages python3-pip
  python3 -m pip install --quiet secretstorage 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages secretstorage
}
