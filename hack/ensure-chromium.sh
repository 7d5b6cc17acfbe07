#!/usr/bin/env bash
# Prints the path of a Chromium that runs headless on stdout, installing
# Debian's chromium package with apt-get when /usr/bin/chromium is missing;
# progress and errors go to stderr. When it is present this takes no time,
# so tiers call it every run (as hack/build-kubelab.sh for kubelab).
#
# The tests that render pages in it (the debug endpoint's HTML) read the path
# from CHROMIUM_BIN.
#
# Use: CHROMIUM_BIN="$(hack/ensure-chromium.sh)"
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly CHROMIUM=/usr/bin/chromium

if [[ ! -x "${CHROMIUM}" ]]; then
	# One install at a time: two tiers may start at once.
	mkdir -p "${REPO_ROOT}/_output"
	exec 9>"${REPO_ROOT}/_output/chromium.lock"
	flock 9
fi
if [[ ! -x "${CHROMIUM}" ]]; then
	as_root=()
	if [[ "$(id -u)" != 0 ]]; then
		if ! command -v sudo >/dev/null; then
			echo "ensure-chromium: ${CHROMIUM} is missing and installing it needs root (no sudo here)" >&2
			exit 1
		fi
		as_root=(sudo -n)
	fi
	echo "ensure-chromium: ${CHROMIUM} is missing, installing Debian's chromium package" >&2
	start=${SECONDS}
	# apt-get and dpkg are talkative: their output is shown only on failure.
	log="$(mktemp)"
	trap 'rm -f "${log}"' EXIT
	if ! { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends chromium; } >"${log}" 2>&1; then
		cat "${log}" >&2
		echo "ensure-chromium: installing chromium failed" >&2
		exit 1
	fi
	echo "ensure-chromium: installed in $((SECONDS - start))s" >&2
	if [[ ! -x "${CHROMIUM}" ]]; then
		echo "ensure-chromium: the chromium package did not provide ${CHROMIUM}" >&2
		exit 1
	fi
fi

echo "${CHROMIUM}"
