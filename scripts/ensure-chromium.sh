# Sourced: makes sure headless Chromium and chromedriver are on the PATH for the dashboard's
# browser tests (crates/serve/tests/browser.rs), installing Debian's packages when missing.
if ! command -v chromedriver >/dev/null 2>&1 || ! { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
  echo "installing Chromium and chromedriver (the dashboard's browser tests drive headless Chromium)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null
fi
command -v chromedriver >/dev/null 2>&1 || { echo "chromedriver is not available" >&2; return 1; }
