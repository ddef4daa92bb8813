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
