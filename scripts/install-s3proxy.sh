#!/usr/bin/env bash
# Print the path of the s3proxy 4.1.0 runnable jar (the S3 server the tests start on loopback) on stdout,
# fetching it from Maven Central with `mvn dependency:get` if needed. Java 17 runs it.
#
# Only the path goes to stdout; progress goes to stderr. Safe to run repeatedly.
# Order of preference:
#   1. $S3PROXY_JAR, if set and a file
#   2. the jar in the local Maven repository (~/.m2, or $MAVEN_REPO)
#   3. mvn dependency:get org.gaul:s3proxy:4.1.0:jar:jar-with-dependencies
set -euo pipefail

S3PROXY_VERSION="4.1.0"
log() { printf 'install-s3proxy: %s\n' "$*" >&2; }

if [[ -n "${S3PROXY_JAR:-}" ]]; then
  if [[ -f "${S3PROXY_JAR}" ]]; then
    printf '%s\n' "${S3PROXY_JAR}"
    exit 0
  fi
  log "S3PROXY_JAR=${S3PROXY_JAR} is not a file; looking elsewhere"
fi

repo_dir="${MAVEN_REPO:-${HOME}/.m2/repository}"
jar="${repo_dir}/org/gaul/s3proxy/${S3PROXY_VERSION}/s3proxy-${S3PROXY_VERSION}-jar-with-dependencies.jar"

if [[ ! -f "${jar}" ]]; then
  command -v mvn >/dev/null || { log "mvn (Maven) is not installed; install Maven and Java 17, or set S3PROXY_JAR"; exit 1; }
  log "fetching org.gaul:s3proxy:${S3PROXY_VERSION} (jar-with-dependencies) from Maven Central"
  mvn -q -B dependency:get -Dmaven.repo.local="${repo_dir}" \
    -Dartifact="org.gaul:s3proxy:${S3PROXY_VERSION}:jar:jar-with-dependencies" >&2
fi
[[ -f "${jar}" ]] || { log "the jar is not at ${jar} after mvn dependency:get"; exit 1; }
command -v java >/dev/null || { log "java is not installed (s3proxy needs Java 17)"; exit 1; }
printf '%s\n' "${jar}"
