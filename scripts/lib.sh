# Shell functions the scripts share (sourced, not run): `. "$(dirname "$0")/lib.sh"`.

# npm_deps NAME SRC: the npm packages pinned by SRC/package.json and SRC/package-lock.json, installed once per lock
# (`npm ci`, no install scripts: none of ours needs one, and none may download a browser or send telemetry) into
# ~/.cache/hss-platform/NAME-<digest of the two files> ($HSS_CACHE_DIR overrides the cache). Prints that folder
# (it holds node_modules/). The install is staged in a folder of its own and moved into place whole, so a cache
# folder is complete or absent; a parallel install may win the move: either copy works.
npm_deps() {
  local name=$1 src=$2 sum dir tmp
  sum=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
  dir=${HSS_CACHE_DIR:-$HOME/.cache/hss-platform}/$name-$sum
  if [ ! -f "$dir/.installed" ]; then
    mkdir -p "$(dirname "$dir")"  # a fresh machine has no cache folder yet
    tmp=$(mktemp -d "${dir}.XXXX")
    cp "$src/package.json" "$src/package-lock.json" "$tmp/"
    (cd "$tmp" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
    touch "$tmp/.installed"
    rm -rf "$dir" && mv "$tmp" "$dir" || rm -rf "$tmp"
  fi
  echo "$dir"
}
