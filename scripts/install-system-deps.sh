#!/usr/bin/env bash
# System packages ds2-keras needs beyond pip, installed only when missing:
#   espeak-ng          the embedded synthetic corpus (ds2 ingest synth, the demo, the tests)
#   python3 venv       `make` creates .venv with it (Debian/Ubuntu ship it separately)
#   a C++ compiler     kenlm, a test-only dependency, builds from source
set -euo pipefail
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
command -v c++ >/dev/null 2>&1 || missing+=(c++)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing system packages for: ${missing[*]}"
if command -v apt-get >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  packages=()
  for need in "${missing[@]}"; do
    case "$need" in
      espeak-ng) packages+=(espeak-ng libsndfile1) ;;
      python3-venv) packages+=(python3-venv) ;;
      c++) packages+=(g++ python3-dev) ;;
    esac
  done
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${packages[@]}" >/dev/null
elif command -v brew >/dev/null 2>&1; then
  brew install espeak-ng libsndfile  # Xcode's command line tools provide c++ and venv
elif command -v dnf >/dev/null 2>&1; then
  sudo dnf install -y espeak-ng libsndfile gcc-c++ python3-devel
else
  echo "install ${missing[*]} with your package manager, then re-run" >&2
  exit 1
fi
