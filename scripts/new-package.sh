#!/usr/bin/env bash
# Scaffolds packages/<name> with the house layout: package.json, tsconfig, README, src/index.ts, test/.
# Usage: scripts/new-package.sh NAME "one-line description" [dep ...]   (deps are other @testbed packages)
# Packages have no project references: each build resolves its dependencies' sources through their `exports`
# (so declarations name them `@testbed/dep/Module`, which `publishConfig.exports` maps to dist). Add the new
# package to tsconfig.build.json.
set -euo pipefail
name="$1"; desc="$2"; shift 2
dir="packages/$name"
mkdir -p "$dir/src/internal" "$dir/test"
deps='"effect": "4.1.0"'
for d in "$@"; do
  deps="$deps, \"@testbed/$d\": \"workspace:*\""
done
cat > "$dir/package.json" <<JSON
{
  "name": "@testbed/$name",
  "version": "0.1.0",
  "description": "$desc",
  "type": "module",
  "license": "MIT",
  "exports": { ".": "./src/index.ts", "./*": "./src/*.ts", "./internal/*": null },
  "files": ["dist", "src"],
  "publishConfig": {
    "exports": {
      ".": { "types": "./dist/index.d.ts", "default": "./dist/index.js" },
      "./*": { "types": "./dist/*.d.ts", "default": "./dist/*.js" },
      "./internal/*": null
    }
  },
  "dependencies": { $deps }
}
JSON
cat > "$dir/tsconfig.json" <<JSON
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "rootDir": "src", "outDir": "dist", "tsBuildInfoFile": "dist/.tsbuildinfo" },
  "include": ["src"]
}
JSON
[ -f "$dir/src/index.ts" ] || echo "// @testbed/$name: $desc" > "$dir/src/index.ts"
[ -f "$dir/README.md" ] || printf '# @testbed/%s\n\n%s\n' "$name" "$desc" > "$dir/README.md"
