#!/usr/bin/env bash
# System packages ds2-keras needs beyond pip: espeak-ng (the embedded synthetic corpus) and
# libsndfile (soundfile bundles its own on most platforms; the system one is a fallback).
set -euo pipefail
if command -v espeak-ng >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq espeak-ng libsndfile1 >/dev/null
elif command -v brew >/dev/null 2>&1; then
  brew install espeak-ng libsndfile
elif command -v dnf >/dev/null 2>&1; then
  sudo dnf install -y espeak-ng libsndfile
else
  echo "install espeak-ng with your package manager, then re-run" >&2
  exit 1
fi
