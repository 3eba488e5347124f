#!/usr/bin/env bash
# Print the path of a usable Temporal CLI (`temporal`) on stdout, installing it if needed.
#
# Only the path goes to stdout; progress goes to stderr. Safe to run repeatedly and concurrently.
# Order of preference:
#   1. $TEMPORAL_CLI_PATH, if set and executable
#   2. `temporal` on PATH
#   3. <repo>/.tools/bin/temporal
#   4. GOBIN=<repo>/.tools/bin go install github.com/temporalio/cli/cmd/temporal@v1.5.1
#      (retried once with GOSUMDB=off if the Go checksum database cannot be reached)
set -euo pipefail

TEMPORAL_CLI_VERSION="v1.5.1"
TEMPORAL_CLI_PKG="github.com/temporalio/cli/cmd/temporal"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bindir="${repo}/.tools/bin"
target="${bindir}/temporal"

log() { printf 'install-temporal: %s\n' "$*" >&2; }

usable() { [[ -f "$1" && -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then
  if [[ -f "${TEMPORAL_CLI_PATH}" && -x "${TEMPORAL_CLI_PATH}" ]]; then
    printf '%s\n' "${TEMPORAL_CLI_PATH}"
    exit 0
  fi
  log "TEMPORAL_CLI_PATH=${TEMPORAL_CLI_PATH} is not an executable file; looking elsewhere"
fi

if on_path="$(command -v temporal 2>/dev/null)" && [[ -n "${on_path}" ]]; then
  printf '%s\n' "${on_path}"
  exit 0
fi

# Another `go install` of the CLI into our bin dir (e.g. started by a provisioning step) may be
# running: its output file is not complete until it exits, so wait for it rather than racing it.
wait_for_other_installs() {
  local waited=0 pids
  while pids="$(pgrep -f "go install ${TEMPORAL_CLI_PKG}@" 2>/dev/null)" && [[ -n "${pids}" ]]; do
    if (( waited % 30 == 0 )); then
      log "waiting for a running 'go install ${TEMPORAL_CLI_PKG}' (pid(s) $(echo ${pids})) to finish..."
    fi
    sleep 2
    waited=$((waited + 2))
    if (( waited > 1800 )); then
      log "gave up waiting after ${waited}s"
      break
    fi
  done
}

mkdir -p "${bindir}"

# Serialise concurrent runs of this script.
exec 9>"${repo}/.tools/install-temporal.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

wait_for_other_installs

if usable "${target}"; then
  printf '%s\n' "${target}"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  log "no 'temporal' found and Go is not installed; install Go >= 1.25 or set TEMPORAL_CLI_PATH"
  exit 1
fi

errlog="$(mktemp)"
trap 'rm -f "${errlog}"' EXIT

# go_install [VAR=value...]: run `go install` with extra environment, mirroring its output to stderr.
go_install() {
  log "building ${TEMPORAL_CLI_PKG}@${TEMPORAL_CLI_VERSION} with $(go version | awk '{print $3}') into ${bindir}${1:+ ($*)}; this takes a few minutes"
  env GOBIN="${bindir}" "$@" go install "${TEMPORAL_CLI_PKG}@${TEMPORAL_CLI_VERSION}" 2>&1 | tee "${errlog}" >&2
}

if ! go_install; then
  # `go install` verifies modules against sum.golang.org. If only that is unreachable, every
  # dependency is still pinned by the CLI module's own go.sum, so GOSUMDB=off is an acceptable fallback.
  if grep -qiE 'sum\.golang\.org|checksum database|verifying (module|go\.mod)|GOSUMDB' "${errlog}"; then
    log "checksum database unreachable; retrying once with GOSUMDB=off"
    go_install GOSUMDB=off
  else
    log "go install failed"
    exit 1
  fi
fi

if ! usable "${target}"; then
  log "${target} was not produced or does not run"
  exit 1
fi
printf '%s\n' "${target}"
