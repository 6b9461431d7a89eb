#!/usr/bin/env bash
# Installs the system tools the project needs when they are missing (Debian packages; needs root).
# Python packages, Kafka jars and the PostgreSQL cluster are set up by bootstrap.sh and devstack.
set -euo pipefail
need=()
# A JDK, not only a JRE: devstack runs deploy/kafka/DepartmentAccess.java as a single-file source program.
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql-15)
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium fonts-noto-cjk)
# The gateway for frontends (deploy/gateway/); nginx-light has every module it uses (proxy, limit_req, ssl, map).
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${need[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The prometheus package starts a server we do not want; promtool is all we use.
  if command -v systemctl >/dev/null; then systemctl stop prometheus 2>/dev/null || true; fi
  pkill -x prometheus 2>/dev/null || true
  # Likewise the nginx service the package may have just started (port 80): devstack runs its own gateway.
  if [[ " ${need[*]} " == *" nginx-light "* ]]; then
    if command -v systemctl >/dev/null; then systemctl disable --now nginx 2>/dev/null || true; fi
    if [ -f /run/nginx.pid ]; then /usr/sbin/nginx -s quit 2>/dev/null || true; fi
  fi
fi
