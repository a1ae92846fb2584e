#!/usr/bin/env bash
# install-openfga.sh — build the OpenFGA server the authorization tests run against, once.
#
# Installs github.com/openfga/openfga/cmd/openfga@v1.22.1 into <repo root>/.tools/bin/openfga (git-ignored);
# idempotent, locked and atomic (scripts/install-gotool.sh). A cold build takes 7–10 minutes, 96 MB.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-gotool.sh" openfga \
	github.com/openfga/openfga github.com/openfga/openfga/cmd/openfga v1.22.1
