#!/usr/bin/env bash
# install-versitygw.sh — build the versitygw S3 server the integration tests run against, once.
#
# Installs github.com/versity/versitygw/cmd/versitygw@v1.8.0 into <repo root>/.tools/bin/versitygw
# (git-ignored); idempotent, locked and atomic (scripts/install-gotool.sh). A cold build takes about
# 3 minutes.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-gotool.sh" versitygw \
	github.com/versity/versitygw github.com/versity/versitygw/cmd/versitygw v1.8.0
