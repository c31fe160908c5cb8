#!/usr/bin/env bash
# Installs what building and testing mmigrate needs on Debian 12, and only
# what is missing (apt-get needs root; nothing happens when all is there).
#
#   bash scripts/deps.sh            # gcc, cmake, the libraries, python3
#   bash scripts/deps.sh --matrix   # also clang with its sanitizer and libFuzzer
#                                   # runtimes, and clang-format: the full test
#                                   # matrix and the format check (CI)
#   bash scripts/deps.sh --bench    # also the peers of bench/: curl, nginx, aria2
set -euo pipefail

packages=(build-essential cmake pkg-config git python3 ca-certificates openssl zip unzip groff-base
	libyaml-dev libcurl4-openssl-dev libcjson-dev libzip-dev libgit2-dev libssl-dev zlib1g-dev)
case "${1:-}" in
"") ;;
--matrix) packages+=(clang libclang-rt-14-dev clang-format) ;;
--bench) packages+=(curl nginx-light aria2) ;;
*) echo "usage: $0 [--matrix|--bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
